package envoy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "http://127.0.0.1:15020/quitquitquit", "http://127.0.0.1:15020/quitquitquit"},
		{"password", "http://u:hunter2@127.0.0.1:1/q", "http://REDACTED@127.0.0.1:1/q"},
		{"bare user is a token", "https://s3cr3t@h/q", "https://REDACTED@h/q"},
		{"token query", "http://h/q?a=1&token=s3cr3t&b", "http://h/q?a=1&token=REDACTED&b"},
		{"api key, any case", "http://h/q?API_Key=s3cr3t", "http://h/q?API_Key=REDACTED"},
		{"escaped name", "http://h/q?pass%77ord=s3cr3t", "http://h/q?pass%77ord=REDACTED"},
		{"unparsable", "http://u:s3cr3t@[::1", "(unparsable URL, not shown)"},
		{"control character", "http://u:s3cr3t@h/\x7f", "(unparsable URL, not shown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q) got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestRedactText: every URL in a text goes through Redact; the rest stays.
func TestRedactText(t *testing.T) {
	t.Parallel()
	in := `Post "http://u:p4ss@127.0.0.1:1/q?token=t0k": refused; then https://s3cr3t@h/x, ok`
	want := `Post "http://REDACTED@127.0.0.1:1/q?token=REDACTED": refused; then https://REDACTED@h/x, ok`
	if got := RedactText(in); got != want {
		t.Errorf("RedactText got %q, want %q", got, want)
	}
	// Scheme-less user info: an address typed without its scheme.
	for in, want := range map[string]string{
		"u:s3cr3t@127.0.0.1:15000":    "REDACTED@127.0.0.1:15000",
		"localhost:15000":             "localhost:15000",
		"http://[::1":                 "http://[::1", // unparsable, but no room for a secret
		"http://u:s3cr3t@[::1":        "(unparsable URL, not shown)",
		"http://[::1/?token=s3cr3t":   "(unparsable URL, not shown)",
		"http://h/q?token=s3cr3t&a=1": "http://h/q?token=REDACTED&a=1",
	} {
		if got := RedactAddress(in); got != want {
			t.Errorf("RedactAddress(%q) got %q, want %q", in, got, want)
		}
	}
}

// TestPostURLErrorsHideSecrets: a failed quit call names its URL without
// the password or token Go's own errors would echo.
func TestPostURLErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // refused from now on
	for _, u := range []string{
		"http://user:s3cr3t@" + addr + "/quit?token=s3cr3t",
		"ftp://user:s3cr3t@" + addr + "/",
		"http://user:s3cr3t@[::1",
	} {
		_, err := PostURL(context.Background(), u, time.Second)
		if err == nil {
			t.Fatalf("PostURL(%q) got no error", u)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("PostURL error leaks the secret: %v", err)
		}
	}
}

// TestPostURLNoRedirect: a 307 from a quit endpoint is its answer; the POST
// never goes where the redirect points.
func TestPostURLNoRedirect(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/quitquitquit", http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	status, err := PostURL(context.Background(), redir.URL+"/quitquitquit", time.Second)
	if err != nil || status != http.StatusTemporaryRedirect {
		t.Errorf("PostURL got %d, %v; want 307, nil", status, err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

// TestPostURLNoProxy: HTTP_PROXY must not carry a quit call. Go reads the
// proxy variables once per process, so the call runs in a child process
// that starts with them set.
func TestPostURLNoProxy(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	// Go never proxies "localhost" or loopback IPs; a name that resolves to
	// loopback is what a proxy would have taken.
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 || !net.ParseIP(addrs[0]).IsLoopback() {
		t.Skipf("host name %q does not resolve to loopback (%v %v); cannot aim a proxied call at this machine", host, addrs, err)
	}
	var proxied, direct atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxied.Add(1) }))
	defer proxy.Close()
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { direct.Add(1) }))
	defer target.Close()
	port := target.Listener.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(os.Args[0], "-test.run=^TestPostURLHelper$")
	cmd.Env = append(os.Environ(), "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL, "NO_PROXY=", "no_proxy=",
		"ENVOY_TEST_POST_URL=http://"+net.JoinHostPort(host, strconv.Itoa(port))+"/quitquitquit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if p, d := proxied.Load(), direct.Load(); p != 0 || d != 1 {
		t.Errorf("requests got %d through the proxy and %d direct, want 0 and 1", p, d)
	}
}

// TestPostURLHelper is TestPostURLNoProxy's child; it does nothing on its own.
func TestPostURLHelper(t *testing.T) {
	u := os.Getenv("ENVOY_TEST_POST_URL")
	if u == "" {
		return
	}
	if _, err := PostURL(context.Background(), u, 5*time.Second); err != nil && !errors.Is(err, ErrConnectionClosed) {
		t.Fatal(err)
	}
}
