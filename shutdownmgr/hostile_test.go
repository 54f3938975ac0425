package shutdownmgr

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/quit"
)

// lineCounter counts log lines holding substr and keeps them all.
type lineCounter struct {
	mu     sync.Mutex
	substr string
	n      int
	all    strings.Builder
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += strings.Count(string(p), c.substr)
	c.all.Write(p)
	return len(p), nil
}

func (c *lineCounter) count() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.all.String()
}

// TestMistypedControlPathsAreErrors: a typo in a preStop path is a 404
// logged as an error, never a 200 load-balancer hit, and HEAD /shutdown
// starts nothing.
func TestMistypedControlPathsAreErrors(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	logs := &lineCounter{substr: "[ERROR]"}
	s := MustOpenServer(t, e, func(s *Server) { s.Logger = hclog.New(&hclog.LoggerOptions{Output: logs}) })
	for _, path := range []string{"/shutdown/", "/Shutdown", "/drain/", "/waitforshutdown/", "/DRAIN", "/shutdown/ready/", "//drain", "/waitz/"} {
		w := record(s, http.MethodGet, path)
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "did you mean") {
			t.Errorf("GET %s got %d %q, want 404 naming the control path", path, w.Code, w.Body.String())
		}
	}
	for _, path := range []string{"/shutdown", "/drain", "/waitforshutdown", "/waitz", "/shutdown/ready"} {
		if w := record(s, http.MethodHead, path); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s got %d, want 405", path, w.Code)
		}
	}
	if w := record(s, http.MethodPost, "/lb"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /lb got %d, want 405 (load-balancer checks are GET or HEAD)", w.Code)
	}
	if w := record(s, http.MethodHead, "/lb"); w.Code != http.StatusOK {
		t.Errorf("HEAD /lb got %d, want 200", w.Code)
	}
	if st := s.State(); st.Drain != "none" || st.Terminating || st.LBHits != 1 {
		t.Errorf("state got %+v, want no drain, not terminating, 1 load-balancer hit (HEAD /lb)", st)
	}
	if n := envoytest.Posts(e.Requests(), "/healthcheck/fail"); n != 0 {
		t.Errorf("envoy got %d /healthcheck/fail, want none", n)
	}
	if n, all := logs.count(); n == 0 {
		t.Errorf("no error logged for the mistyped paths:\n%s", all)
	}
}

// TestRemoteDrainNeedsToken: without a token only loopback may start a
// drain; a token or AllowRemoteDrain lets kubelet's hooks (from the node)
// in.
func TestRemoteDrainNeedsToken(t *testing.T) {
	t.Parallel()
	remote := func(s *Server, method, target string, kv ...string) int {
		r := newRequest(method, target, "10.1.2.3:40000", kv...)
		w := &recorder{h: http.Header{}}
		s.ServeHTTP(w, r)
		return w.code
	}
	e, _ := startEnvoy(t, envoyfake.Options{})
	s := MustOpenServer(t, e, nil)
	for _, path := range []string{"/drain", "/shutdown", "/shutdown?deadline=5"} {
		if got := remote(s, http.MethodGet, path); got != http.StatusForbidden {
			t.Errorf("remote GET %s without a token got %d, want 403", path, got)
		}
	}
	if st := s.State(); st.Drain != "none" || st.Terminating {
		t.Errorf("state after refused remote drains got %+v, want untouched", st)
	}
	if n := envoytest.Posts(e.Requests(), "/healthcheck/fail"); n != 0 {
		t.Errorf("envoy got %d /healthcheck/fail from refused requests, want none", n)
	}
	// Waits start nothing: they stay open to the node.
	if got := remote(s, http.MethodGet, "/waitforshutdown?deadline=0.05"); got != http.StatusRequestTimeout {
		t.Errorf("remote /waitforshutdown got %d, want 408", got)
	}

	e2, _ := startEnvoy(t, envoyfake.Options{})
	tok := MustOpenServer(t, e2, func(s *Server) { s.Token = "s3cret" })
	if got := remote(tok, http.MethodGet, "/drain?delay=0", TokenHeader, "s3cret"); got != http.StatusOK {
		t.Errorf("remote /drain with the token got %d, want 200", got)
	}
	e3, _ := startEnvoy(t, envoyfake.Options{})
	open := MustOpenServer(t, e3, func(s *Server) { s.AllowRemoteDrain = true })
	if got := remote(open, http.MethodGet, "/drain?delay=0"); got != http.StatusOK {
		t.Errorf("remote /drain with AllowRemoteDrain got %d, want 200", got)
	}
}

// newRequest is a server-side request from remote.
func newRequest(method, target, remote string, kv ...string) *http.Request {
	u, _ := url.Parse(target)
	r := (&http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: remote}).WithContext(context.Background())
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	return r
}

// recorder keeps the status of one answer.
type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(p), nil
}
func (r *recorder) WriteHeader(code int) { r.code = code }

func TestTokenMatches(t *testing.T) {
	t.Parallel()
	want := sha256.Sum256([]byte("s3cret"))
	for _, tc := range []struct {
		got string
		ok  bool
	}{{"s3cret", true}, {"s3cret\n", false}, {"s3cre", false}, {"", false}, {"S3CRET", false}, {strings.Repeat("s3cret", 1000), false}} {
		if ok := tokenMatches(tc.got, want); ok != tc.ok {
			t.Errorf("tokenMatches(%q) got %v, want %v", tc.got, ok, tc.ok)
		}
	}
}

// TestRefusedTokenNeverLogged: a wrong token (a Secret with a trailing
// newline, say) shows neither in the answer nor in the logs.
func TestRefusedTokenNeverLogged(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	logs := &lineCounter{substr: "refused"}
	s := MustOpenServer(t, e, func(s *Server) {
		s.Token = "s3cret"
		s.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	})
	w := record(s, http.MethodGet, "/drain", TokenHeader, "s3cret-almost")
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "almost") {
		t.Errorf("wrong token got %d %q, want 403 without the token", w.Code, w.Body.String())
	}
	if _, all := logs.count(); strings.Contains(all, "s3cret") {
		t.Errorf("logs hold a token:\n%s", all)
	}
}

// TestRefusalLogsAreRateLimited: 200 refused requests cost one log line.
func TestRefusalLogsAreRateLimited(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	logs := &lineCounter{substr: "refused"}
	s := MustOpenServer(t, e, func(s *Server) {
		s.Token = "s3cret"
		s.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	})
	for range 200 {
		record(s, http.MethodGet, "/drain", TokenHeader, "guess")
	}
	if n, all := logs.count(); n != 1 {
		t.Errorf("got %d refusal lines for 200 refusals, want 1:\n%s", n, all)
	}
}

// TestQueryDurationsBounded: absurd durations are a 400 that says what is
// valid, never a 37,000-polls-a-second drain or one that outlives SIGTERM.
func TestQueryDurationsBounded(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	s := MustOpenServer(t, e, nil)
	for _, q := range []string{"period=1ns", "period=0.000001", "deadline=9223372036", "deadline=86401",
		"delay=9223372036.854775807", "deadline=9223372036.854775807", "delay=2h", "deadline=2h"} {
		for _, path := range []string{"/shutdown", "/waitforshutdown"} {
			w := record(s, http.MethodGet, path+"?"+q)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), q[:strings.Index(q, "=")]) {
				t.Errorf("GET %s?%s got %d %q, want 400 naming the parameter", path, q, w.Code, w.Body.String())
			}
		}
	}
	if st := s.State(); st.Drain != "none" {
		t.Errorf("a refused query started a drain: %+v", st)
	}
	for _, in := range []string{"9223372036.854775807", "9223372036", "86401", "25h", "9999999999h", "1e19"} {
		if d, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) got %s, want an error", in, d)
		}
	}
	if d, err := ParseDuration("86400"); err != nil || d != MaxDuration {
		t.Errorf("ParseDuration(86400) got %s, %v; want 24h", d, err)
	}
}

// TestUnwritableReadyFileFailsTheDrain: a drain whose ready file cannot be
// written did not succeed: /drain answers 500 and Once reports ErrReadyFile.
func TestUnwritableReadyFileFailsTheDrain(t *testing.T) {
	t.Parallel()
	ready := filepath.Join(t.TempDir(), "missing-dir", "ok")
	e, _ := startEnvoy(t, envoyfake.Options{})
	s := MustOpenServer(t, e, func(s *Server) { s.ReadyFile = ready })
	if a := call(context.Background(), s, http.MethodGet, "/drain?delay=0"); a.status != http.StatusInternalServerError || !strings.Contains(a.body, "ready file") {
		t.Errorf("/drain got %d %q, want 500 naming the ready file", a.status, a.body)
	}

	e2, _ := startEnvoy(t, envoyfake.Options{})
	admin, err := envoy.New(e2.AdminURL(), envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := Once{Drain: quit.Drain{Admin: admin, Period: 10 * time.Millisecond}, ReadyFile: ready, Logger: testproc.Logger(t)}
	if res, err := o.Run(context.Background()); !errors.Is(err, ErrReadyFile) {
		t.Errorf("Once.Run got %q, %v; want ErrReadyFile", res.Reason, err)
	}
}

// TestDrainFailsFastWhenEnvoyIsGone: an admin that refuses connections ends
// the drain at once, without waiting out the delay.
func TestDrainFailsFastWhenEnvoyIsGone(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	admin, err := envoy.New("http://"+addr, envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ok")
	o := Once{Drain: quit.Drain{Admin: admin, Delay: time.Hour, Period: time.Second, Deadline: 2 * time.Hour}, ReadyFile: ready, Logger: testproc.Logger(t)}
	done := make(chan quit.Result, 1)
	go func() { res, _ := o.Run(context.Background()); done <- res }()
	select {
	case res := <-done:
		if res.Reason != quit.ReasonUnreachable {
			t.Errorf("reason got %q, want %q", res.Reason, quit.ReasonUnreachable)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain of an unreachable envoy still running after 10s (delay 1h)")
	}
	// No health check was failed, so Envoy must not be released: the
	// waiter holds it until its deadline (examples/04's README).
	if fileExists(ready) {
		t.Error("a drain that never reached the admin wrote the ready file")
	}
}

// TestStateLockKeepsRestoreOutOfALiveDrain: a second manager on the same
// state file must not POST /healthcheck/ok into the first one's drain.
func TestStateLockKeepsRestoreOutOfALiveDrain(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	stateFile := filepath.Join(t.TempDir(), "state")
	first := MustOpenServer(t, e, func(s *Server) { s.StateFile = stateFile })
	envoytest.Hold(t, e, h) // the drain waits for this connection
	ch := goCall(first, "/drain?delay=0")
	envoytest.WaitRequests(t, e, "/stats", 2)
	log, seen := watchLogger(t, "another process is draining")
	MustOpenServer(t, e, func(s *Server) { s.StateFile = stateFile; s.Logger = log })
	select {
	case <-seen:
	case <-time.After(10 * time.Second):
		t.Fatal("second manager did not see the lock")
	}
	if n := envoytest.Posts(e.Requests(), "/healthcheck/ok"); n != 0 {
		t.Errorf("envoy got %d /healthcheck/ok during the first manager's drain, want 0", n)
	}
	h.Release()
	if a := recv(t, ch, "/drain"); a.status != http.StatusOK {
		t.Errorf("/drain got %d %q", a.status, a.body)
	}
}

// TestConnectionCap: past MaxConns, new connections are closed at once,
// the open count never exceeds the cap, the shedding is logged once, and
// the server answers again once the flood is gone.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	logs := &lineCounter{substr: "connection limit reached"}
	s := MustOpenServer(t, e, func(s *Server) {
		s.MaxConns = 20
		s.Logger = hclog.New(&hclog.LoggerOptions{Output: logs})
	})
	lim := s.ln.(*limitListener)
	addr := "127.0.0.1:" + strconv.Itoa(s.Port())
	const clients = 300
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Each connection either stays open (held by the server, which waits
	// for its request headers) or is closed by the server: read to tell.
	shed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF || errors.Is(err, net.ErrClosed) || isReset(err) {
			shed++
		}
	}
	if open := lim.open.Load(); open > 20 {
		t.Errorf("server holds %d connections, want at most 20", open)
	}
	if shed < clients-20 {
		t.Errorf("got %d connections shed, want at least %d", shed, clients-20)
	}
	if n, all := logs.count(); n != 1 {
		t.Errorf("got %d shedding log lines, want 1:\n%s", n, all)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testproc.WaitFor(t, "the held connections to close", func() bool { return lim.open.Load() == 0 })
	if a := call(context.Background(), s, http.MethodGet, "/healthz"); a.err != nil || a.status != http.StatusOK {
		t.Errorf("/healthz after the flood got %d %v", a.status, a.err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}
