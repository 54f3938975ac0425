package envoy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/internal/testproc"
)

// newTestClient builds a client for base and fails at the caller's line.
func newTestClient(t *testing.T, base string, timeout time.Duration) *Client {
	t.Helper()
	c, err := New(base, Options{Timeout: timeout, Logger: testproc.Logger(t).Named("envoy")})
	if err != nil {
		t.Fatalf("New(%q): %v", base, err)
	}
	return c
}

// fakeAdmin is a tiny Envoy admin that follows reference/envoy-admin.md:
// POST-only mutating endpoints (405 otherwise), "OK\n" answers, pretty
// server_info JSON and text stats with Envoy's filter semantics.
type fakeAdmin struct {
	stats string // text-format stats dump

	mu     sync.Mutex
	states []string // server_info states, one per request; the last repeats
	calls  []string // "METHOD path?rawquery"
}

func (f *fakeAdmin) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI())
}

func (f *fakeAdmin) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAdmin) nextState() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.states) == 0 {
		return StateLive
	}
	s := f.states[0]
	if len(f.states) > 1 {
		f.states = f.states[1:]
	}
	return s
}

// envoyQuery decodes a query the way Envoy 1.16+ does: bare keys allowed,
// values percent-decoded, '+' left alone.
func envoyQuery(raw string) map[string]string {
	q := map[string]string{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		q[k] = v
	}
	return q
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.record(r)
	switch r.URL.Path {
	case "/server_info":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\n \"version\": \"abc/1.36.6/Clean/RELEASE/BoringSSL\",\n \"state\": %q,\n \"uptime_current_epoch\": \"1s\"\n}\n", f.nextState())
	case "/stats":
		q := envoyQuery(r.URL.RawQuery)
		re, err := regexp.Compile(q["filter"])
		if err != nil {
			http.Error(w, "Invalid re2 regex", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		sc := bufio.NewScanner(strings.NewReader(f.stats))
		for sc.Scan() {
			name, _, _ := strings.Cut(sc.Text(), ": ")
			if re.MatchString(name) {
				fmt.Fprintln(w, sc.Text())
			}
		}
	case "/healthcheck/fail", "/healthcheck/ok", "/drain_listeners", "/quitquitquit":
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			fmt.Fprintf(w, "Method %s not allowed, POST required.", r.Method)
			return
		}
		io.WriteString(w, "OK\n")
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "invalid path. admin commands are:\n  /: Admin home page\n")
	}
}

func startFake(t *testing.T, f http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(testproc.FreePorts(t, 1)[0])
}

// blackHole accepts connections and never answers.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

func TestNew(t *testing.T) {
	t.Parallel()
	c, err := New("http://127.0.0.1:15000/", Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("timeout got %v, want %v", c.timeout, DefaultTimeout)
	}
	if got := c.Base().String(); got != "http://127.0.0.1:15000" {
		t.Errorf("Base got %q, want %q", got, "http://127.0.0.1:15000")
	}
	c.Base().Host = "mutated"
	if got := c.Base().Host; got != "127.0.0.1:15000" {
		t.Errorf("Base is shared: got host %q after mutating a copy", got)
	}
	for _, tt := range []struct {
		base string
		o    Options
		want string
	}{
		{"ftp://x", Options{}, `unsupported scheme "ftp"`},
		{"http://127.0.0.1:15000", Options{Timeout: -time.Second}, "invalid timeout -1s"},
	} {
		if _, err := New(tt.base, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %+v) error got %v, want it to contain %q", tt.base, tt.o, err, tt.want)
		}
	}
}

func TestServerInfo(t *testing.T) {
	t.Parallel()
	fixture := readFixture(t, "server_info.json")
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		want     ServerInfo
		wantCode int    // >0: want a *StatusError with this code
		wantErr  string // substring; empty with wantCode 0 means success
	}{
		{name: "ok", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(fixture)
		}, want: ServerInfo{State: StateLive, Version: "b050513e840aa939a01f89b07c162f00ab3150eb/1.36.6/Clean/RELEASE/BoringSSL", Uptime: 6 * time.Second}},
		{name: "503", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
		}, wantCode: 503, wantErr: "GET /server_info: status 503: no healthy upstream"},
		{name: "html", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<!DOCTYPE html><html><body>Envoy Admin</body></html>")
		}, wantErr: "invalid character '<'"},
		{name: "truncated json", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write(fixture[:40])
		}, wantErr: "unexpected EOF"},
		{name: "truncated transfer", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "4096")
			w.Write(fixture[:40])
		}, wantErr: "cannot parse server info"},
		{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://example.com/", http.StatusFound)
		}, wantCode: 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startFake(t, tt.handler)
			c := newTestClient(t, srv.URL, time.Second)
			got, err := c.ServerInfo(context.Background())
			if tt.wantCode == 0 && tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ServerInfo got (%+v, %v), want (%+v, nil)", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ServerInfo got %+v, want error", got)
			}
			var se *StatusError
			if gotCode := 0; errors.As(err, &se) {
				gotCode = se.Code
				if gotCode != tt.wantCode {
					t.Fatalf("ServerInfo StatusError code got %d, want %d", gotCode, tt.wantCode)
				}
			} else if tt.wantCode != 0 {
				t.Fatalf("ServerInfo error got %v, want a *StatusError %d", err, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ServerInfo error got %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestWaitLivePreInitializingThenLive(t *testing.T) {
	t.Parallel()
	f := &fakeAdmin{states: []string{StatePreInitializing, StatePreInitializing, StatePreInitializing, StateLive}}
	srv := httptest.NewUnstartedServer(f)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL, time.Second)

	var notified []error
	err := c.WaitLive(context.Background(), backoff.NewConstantBackOff(time.Millisecond), func(err error, next time.Duration) {
		notified = append(notified, err)
	})
	if err != nil {
		t.Fatalf("WaitLive got %v, want nil", err)
	}
	if got, want := len(notified), 3; got != want {
		t.Fatalf("notify calls got %d, want %d: %v", got, want, notified)
	}
	for _, e := range notified {
		if !errors.Is(e, ErrNotLive) || !strings.Contains(e.Error(), StatePreInitializing) {
			t.Errorf("notify error got %v, want ErrNotLive with state %s", e, StatePreInitializing)
		}
	}
	if got, want := len(f.Calls()), 4; got != want {
		t.Errorf("requests got %d, want %d", got, want)
	}
	// Bodies are drained, so all polls share one keep-alive connection.
	if got := conns.Load(); got != 1 {
		t.Errorf("connections got %d, want 1", got)
	}
}

func TestWaitLiveNotYetAnswers(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := startFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			http.Error(w, "", http.StatusServiceUnavailable)
		case 2:
			io.WriteString(w, "<html>starting</html>")
		case 3:
			io.WriteString(w, `{"state": "LI`)
		case 4:
			io.WriteString(w, "LIVE\n")
		case 5:
			io.WriteString(w, `{"state": "INITIALIZING"}`)
		case 6:
			io.WriteString(w, `{"state": "DRAINING"}`)
		default:
			io.WriteString(w, `{"state": "LIVE", "version": "v"}`)
		}
	}))
	c := newTestClient(t, srv.URL, time.Second)
	var notified int
	err := c.WaitLive(context.Background(), backoff.NewConstantBackOff(time.Millisecond), func(error, time.Duration) { notified++ })
	if err != nil {
		t.Fatalf("WaitLive got %v, want nil", err)
	}
	if notified != 6 {
		t.Fatalf("notify calls got %d, want 6", notified)
	}
}

func TestWaitLiveBlackHole(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, blackHole(t), 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var notified int
	err := c.WaitLive(ctx, backoff.NewConstantBackOff(time.Millisecond), func(error, time.Duration) { notified++ })
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLive error got %v, want context.DeadlineExceeded", err)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("WaitLive returned after %v, want about 300ms", elapsed)
	}
	if notified < 2 {
		t.Errorf("notify calls got %d, want several request timeouts before the deadline", notified)
	}
}

func TestWaitLiveRefusedIsRetryable(t *testing.T) {
	t.Parallel()
	addr := refusedAddr(t)
	c := newTestClient(t, "http://"+addr, time.Second)
	var notified int
	err := c.WaitLive(context.Background(), backoff.NewConstantBackOff(time.Millisecond), func(err error, _ time.Duration) {
		notified++
		if notified > 1 {
			return
		}
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("first error got %v, want ErrUnreachable and ECONNREFUSED", err)
		}
		// Envoy comes up on the refused port.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("cannot listen on %s again: %v", addr, err)
		}
		srv := httptest.NewUnstartedServer(&fakeAdmin{})
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		t.Cleanup(srv.Close)
	})
	if err != nil {
		t.Fatalf("WaitLive got %v, want nil", err)
	}
	if notified != 1 {
		t.Fatalf("notify calls got %d, want 1", notified)
	}
}

func TestWaitLiveEnds(t *testing.T) {
	t.Parallel()
	srv := startFake(t, &fakeAdmin{states: []string{StatePreInitializing}})
	c := newTestClient(t, srv.URL, time.Second)

	t.Run("cancelled before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.WaitLive(ctx, backoff.NewConstantBackOff(time.Millisecond), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitLive got %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled while not live", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var notified int
		err := c.WaitLive(ctx, backoff.NewConstantBackOff(time.Millisecond), func(error, time.Duration) {
			if notified++; notified == 2 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrNotLive) {
			t.Fatalf("WaitLive got %v, want context.Canceled and the last ErrNotLive", err)
		}
	})
	t.Run("backoff stops", func(t *testing.T) {
		b := backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Millisecond), 2)
		err := c.WaitLive(context.Background(), b, nil)
		if !errors.Is(err, ErrNotLive) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitLive got %v, want ErrNotLive", err)
		}
	})
	t.Run("max elapsed time warning", func(t *testing.T) {
		var buf bytes.Buffer
		live := startFake(t, &fakeAdmin{})
		lc, err := New(live.URL, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &buf})})
		if err != nil {
			t.Fatal(err)
		}
		if err := lc.WaitLive(context.Background(), backoff.NewExponentialBackOff(), nil); err != nil {
			t.Fatalf("WaitLive got %v, want nil", err)
		}
		if !strings.Contains(buf.String(), "backoff has a max elapsed time: max_elapsed_time=15m0s") {
			t.Fatalf("log got %q, want a max elapsed time warning", buf.String())
		}
	})
	t.Run("nil backoff", func(t *testing.T) {
		if err := c.WaitLive(context.Background(), nil, nil); err == nil {
			t.Fatal("WaitLive(nil backoff) got nil, want error")
		}
	})
	t.Run("nil context", func(t *testing.T) {
		var ctx context.Context
		if err := c.WaitLive(ctx, backoff.NewConstantBackOff(time.Millisecond), nil); err == nil {
			t.Fatal("WaitLive(nil ctx) got nil, want error")
		}
		if _, err := c.ServerInfo(ctx); err == nil {
			t.Fatal("ServerInfo(nil ctx) got nil, want error")
		}
		if err := c.Quit(ctx); err == nil {
			t.Fatal("Quit(nil ctx) got nil, want error")
		}
	})
}

func TestHealthchecks(t *testing.T) {
	t.Parallel()
	f := &fakeAdmin{}
	srv := startFake(t, f)
	c := newTestClient(t, srv.URL, time.Second)
	if err := c.FailHealthchecks(context.Background()); err != nil {
		t.Fatalf("FailHealthchecks got %v, want nil", err)
	}
	if err := c.OKHealthchecks(context.Background()); err != nil {
		t.Fatalf("OKHealthchecks got %v, want nil", err)
	}
	want := []string{"POST /healthcheck/fail", "POST /healthcheck/ok"}
	if got := f.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls got %v, want %v", got, want)
	}

	srv500 := startFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "boom\n")
	}))
	err := newTestClient(t, srv500.URL, time.Second).FailHealthchecks(context.Background())
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("FailHealthchecks error got %v, want *StatusError", err)
	}
	if wantSE := (StatusError{Method: "POST", Path: "/healthcheck/fail", Code: 500, Body: "boom\n"}); *se != wantSE {
		t.Fatalf("StatusError got %+v, want %+v", *se, wantSE)
	}
	if want := "cannot fail health checks: POST /healthcheck/fail: status 500: boom"; err.Error() != want {
		t.Fatalf("error got %q, want %q", err, want)
	}
}

func TestDrainListeners(t *testing.T) {
	t.Parallel()
	f := &fakeAdmin{}
	srv := startFake(t, f)
	c := newTestClient(t, srv.URL, time.Second)
	if err := c.DrainListeners(context.Background(), DrainOptions{Graceful: true, InboundOnly: true}); err != nil {
		t.Fatalf("DrainListeners got %v, want nil", err)
	}
	if err := c.DrainListeners(context.Background(), DrainOptions{Graceful: true, InboundOnly: true, SkipExit: true}); err != nil {
		t.Fatalf("DrainListeners got %v, want nil", err)
	}
	want := []string{"POST /drain_listeners?graceful&inboundonly", "POST /drain_listeners?graceful&inboundonly&skip_exit"}
	if got := f.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls got %q, want %q", got, want)
	}

	// Envoy < 1.12: no such endpoint.
	old := startFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "invalid path. admin commands are:\n  /: Admin home page\n")
	}))
	err := newTestClient(t, old.URL, time.Second).DrainListeners(context.Background(), DrainOptions{Graceful: true, InboundOnly: true})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("DrainListeners error got %v, want *StatusError with code 404", err)
	}
	// The answer's first line shows in the error, for the log.
	if !strings.Contains(err.Error(), "status 404: invalid path.") {
		t.Fatalf("DrainListeners error got %q, want it to hold the answer", err)
	}
}

func TestQuit(t *testing.T) {
	t.Parallel()
	hijack := func(reset bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			if reset {
				conn.(*net.TCPConn).SetLinger(0)
			}
			conn.Close()
		}
	}
	tests := []struct {
		name     string
		handler  http.Handler // nil: nothing listens
		wantErr  error        // sentinel; nil with wantCode 0 means success
		wantCode int
	}{
		{name: "envoy 200", handler: &fakeAdmin{}},
		{name: "pilot-agent 200", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
				return
			}
			io.WriteString(w, "OK")
		})},
		{name: "405", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		}), wantCode: 405},
		{name: "403 not localhost", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Only requests from localhost are allowed", http.StatusForbidden)
		}), wantCode: 403},
		{name: "refused", wantErr: ErrUnreachable},
		{name: "closed after request", handler: hijack(false), wantErr: ErrConnectionClosed},
		{name: "reset after request", handler: hijack(true), wantErr: ErrConnectionClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := "http://" + refusedAddr(t)
			if tt.handler != nil {
				base = startFake(t, tt.handler).URL
			}
			err := newTestClient(t, base, time.Second).Quit(context.Background())
			switch {
			case tt.wantCode != 0:
				var se *StatusError
				if !errors.As(err, &se) || se.Code != tt.wantCode || se.Method != "POST" || se.Path != "/quitquitquit" {
					t.Fatalf("Quit error got %v, want *StatusError POST /quitquitquit %d", err, tt.wantCode)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Quit error got %v, want %v", err, tt.wantErr)
				}
				other := ErrConnectionClosed
				if tt.wantErr == ErrConnectionClosed {
					other = ErrUnreachable
				}
				if errors.Is(err, other) {
					t.Fatalf("Quit error got %v, want not %v", err, other)
				}
			default:
				if err != nil {
					t.Fatalf("Quit got %v, want nil", err)
				}
			}
		})
	}
}

func TestGone(t *testing.T) {
	t.Parallel()
	t.Run("tcp", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(&fakeAdmin{})
		c := newTestClient(t, srv.URL, time.Second)
		if c.Gone(context.Background()) {
			t.Fatal("Gone got true while serving, want false")
		}
		srv.Close()
		if !c.Gone(context.Background()) {
			t.Fatal("Gone got false after close, want true")
		}
	})
	t.Run("black hole is not gone", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, blackHole(t), time.Second)
		if c.Gone(context.Background()) {
			t.Fatal("Gone got true for a listening port, want false")
		}
	})
	t.Run("cancelled context is not gone", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, "http://"+refusedAddr(t), time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c.Gone(ctx) {
			t.Fatal("Gone got true with a cancelled context, want false")
		}
	})
	t.Run("stale unix socket", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "a.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		c := newTestClient(t, "unix://"+path, time.Second)
		if c.Gone(context.Background()) {
			t.Fatal("Gone got true while listening, want false")
		}
		l.Close()
		if !c.Gone(context.Background()) {
			t.Fatal("Gone got false for a stale socket file, want true")
		}
	})
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{stats: string(readFixture(t, "stats.txt"))}
	srv := httptest.NewUnstartedServer(f)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)

	c := newTestClient(t, "unix://"+path, time.Second)
	ctx := context.Background()
	if si, err := c.ServerInfo(ctx); err != nil || si.State != StateLive {
		t.Fatalf("ServerInfo got (%+v, %v), want LIVE", si, err)
	}
	if err := c.WaitLive(ctx, backoff.NewConstantBackOff(time.Millisecond), nil); err != nil {
		t.Fatalf("WaitLive got %v, want nil", err)
	}
	if err := c.FailHealthchecks(ctx); err != nil {
		t.Fatalf("FailHealthchecks got %v, want nil", err)
	}
	if sum, matched, err := c.ActiveConnections(ctx, DefaultConnSelector()); err != nil || sum != 15 || matched != 4 {
		t.Fatalf("ActiveConnections got (%d, %d, %v), want (15, 4, nil)", sum, matched, err)
	}
	if c.Gone(ctx) {
		t.Fatal("Gone got true while serving, want false")
	}
	srv.Close() // unlinks the socket
	if !c.Gone(ctx) {
		t.Fatal("Gone got false after close, want true")
	}
	if _, err := c.ServerInfo(ctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("ServerInfo after close got %v, want ErrUnreachable", err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	f := &fakeAdmin{stats: string(readFixture(t, "stats.txt"))}
	srv := startFake(t, f)
	c := newTestClient(t, srv.URL, time.Second)
	ctx := context.Background()

	stats, err := c.Stats(ctx, StatsQuery{Filter: "downstream_cx_active$", UsedOnly: true})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if got, want := len(stats), 30; got != want {
		t.Fatalf("Stats got %d stats, want %d", got, want)
	}

	tests := []struct {
		name        string
		sel         Selector
		wantQuery   string
		wantSum     uint64
		wantMatched int
	}{
		{name: "conns", sel: DefaultConnSelector(), wantQuery: `filter=^listener\..*downstream_cx_active$`, wantSum: 15, wantMatched: 4},
		{name: "requests", sel: DefaultRequestSelector(), wantQuery: `filter=downstream_rq_active$`, wantSum: 6, wantMatched: 2},
		// No Filter: Include's source is sent raw, '+' included.
		{name: "include as filter", sel: Selector{Include: regexp.MustCompile(`^listener\.(.+)\.downstream_cx_active$`)},
			wantQuery: `filter=^listener\.(.+)\.downstream_cx_active$`, wantSum: 71, wantMatched: 27},
		{name: "missing stat", sel: Selector{Include: regexp.MustCompile(`^nope$`)}, wantQuery: `filter=^nope$`},
	}
	for _, tt := range tests {
		before := len(f.Calls())
		sum, matched, err := c.ActiveConnections(ctx, tt.sel)
		if err != nil {
			t.Fatalf("%s: ActiveConnections: %v", tt.name, err)
		}
		if sum != tt.wantSum || matched != tt.wantMatched {
			t.Errorf("%s: ActiveConnections got (%d, %d), want (%d, %d)", tt.name, sum, matched, tt.wantSum, tt.wantMatched)
		}
		calls := f.Calls()[before:]
		if want := "GET /stats?" + tt.wantQuery; len(calls) != 1 || calls[0] != want {
			t.Errorf("%s: requests got %q, want [%q]", tt.name, calls, want)
		}
	}

	if _, _, err := c.ActiveConnections(ctx, Selector{}); err == nil {
		t.Error("ActiveConnections with no Include got nil error, want error")
	}
	bad := Selector{Include: regexp.MustCompile(`x`), Filter: `(`}
	var se *StatusError
	if _, _, err := c.ActiveConnections(ctx, bad); !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Errorf("ActiveConnections with a bad filter got %v, want *StatusError 400", err)
	}
}

func TestHTTPS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(&fakeAdmin{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake error is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	// Bounds, not waits: a handshake under -race on a loaded machine can
	// take more than the default 1s, and a timeout would hide the error
	// this test is about.
	c, err := New(srv.URL, Options{TLSConfig: &tls.Config{RootCAs: pool}, Timeout: testproc.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	if si, err := c.ServerInfo(context.Background()); err != nil || si.State != StateLive {
		t.Fatalf("ServerInfo over TLS got (%+v, %v), want LIVE", si, err)
	}
	untrusted := newTestClient(t, srv.URL, testproc.Timeout)
	var unknown x509.UnknownAuthorityError
	if _, err := untrusted.ServerInfo(context.Background()); !errors.As(err, &unknown) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("ServerInfo with untrusted cert got %v, want x509.UnknownAuthorityError", err)
	}
}

func TestProxyEnvIgnored(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("HTTP_PROXY", "http://"+refusedAddr(t))
	t.Setenv("NO_PROXY", "")
	srv := startFake(t, &fakeAdmin{})
	c := newTestClient(t, srv.URL, time.Second)
	if _, err := c.ServerInfo(context.Background()); err != nil {
		t.Fatalf("ServerInfo with HTTP_PROXY set got %v, want nil", err)
	}
}

func TestCappedReader(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n, max  int
		wantErr bool
	}{{10, 10, false}, {11, 10, true}, {0, 0, false}, {1, 0, true}} {
		_, err := io.ReadAll(newCappedReader(bytes.NewReader(make([]byte, tt.n)), int64(tt.max)))
		if got := errors.Is(err, ErrTooLarge); got != tt.wantErr {
			t.Errorf("cappedReader(%d bytes, max %d) too large got %v, want %v", tt.n, tt.max, got, tt.wantErr)
		}
	}
}

func BenchmarkServerInfo(b *testing.B) {
	srv := httptest.NewServer(&fakeAdmin{})
	defer srv.Close()
	c, err := New(srv.URL, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ServerInfo(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
