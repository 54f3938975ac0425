package shutdownmgr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// startEnvoy starts a fake Envoy whose listener proxies to a held upstream.
func startEnvoy(tb testing.TB, o envoyfake.Options) (*envoyfake.Envoy, *testproc.Held) {
	tb.Helper()
	return envoytest.StartHeld(tb, o)
}

// MustOpenServer opens a Server on 127.0.0.1:0 against e with test-sized
// settings, changed by configure, and closes it when the test ends.
func MustOpenServer(tb testing.TB, e *envoyfake.Envoy, configure func(*Server)) *Server {
	tb.Helper()
	admin := envoytest.Client(tb, e.AdminURL())
	log := testproc.Logger(tb)
	s := &Server{
		Addr: "127.0.0.1:0",
		Drain: quit.Drain{
			Admin:    admin,
			Period:   10 * time.Millisecond,
			Deadline: 10 * time.Second,
			Logger:   log.Named("drain"),
		},
		ReadyFileInterval: 10 * time.Millisecond,
		ShutdownTimeout:   2 * time.Second,
		Logger:            log,
	}
	if configure != nil {
		configure(s)
	}
	if err := s.Open(); err != nil {
		tb.Fatalf("cannot open server: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// answer is one HTTP answer.
type answer struct {
	status int
	body   string
	err    error
}

// call sends method path to s with the header key/values kv.
func call(ctx context.Context, s *Server, method, path string, kv ...string) answer {
	req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", s.Port(), path), nil)
	if err != nil {
		return answer{err: err}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), err: err}
}

// goCall runs call in the background.
func goCall(s *Server, path string, kv ...string) <-chan answer {
	ch := make(chan answer, 1)
	go func() { ch <- call(context.Background(), s, http.MethodGet, path, kv...) }()
	return ch
}

func recv(tb testing.TB, ch <-chan answer, what string) answer {
	tb.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			tb.Fatalf("%s: %v", what, a.err)
		}
		return a
	case <-time.After(testproc.Timeout):
		tb.Fatalf("%s: no answer in %v", what, testproc.Timeout)
	}
	return answer{}
}

// pending fails if ch already has an answer.
func pending(tb testing.TB, ch <-chan answer, what string) {
	tb.Helper()
	select {
	case a := <-ch:
		tb.Fatalf("%s answered early: %d %q %v", what, a.status, a.body, a.err)
	default:
	}
}

// record serves one request from loopback through ServeHTTP with a recorder.
func record(s *Server, method, target string, kv ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "127.0.0.1:1234"
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestProbesBeforeAndAfterTerminate(t *testing.T) {
	t.Parallel()
	s := &Server{Logger: testproc.Logger(t)}
	before := map[string]int{"/healthz": 200, "/health/alive": 200, "/readyz": 200, "/health/ready": 200, "/": 200, "/lb-check": 200}
	after := map[string]int{"/healthz": 200, "/health/alive": 200, "/readyz": 503, "/health/ready": 503, "/": 503, "/lb-check": 503}
	for path, want := range before {
		if got := record(s, http.MethodGet, path).Code; got != want {
			t.Errorf("before: GET %s got %d, want %d", path, got, want)
		}
	}
	if got := s.State().LBHits; got != 2 {
		t.Errorf("load-balancer hits got %d, want 2 (only the catch-all counts)", got)
	}
	s.Terminate("test")
	s.Terminate("test again") // idempotent
	for path, want := range after {
		if got := record(s, http.MethodGet, path).Code; got != want {
			t.Errorf("after: GET %s got %d, want %d", path, got, want)
		}
	}
	if st := s.State(); !st.Terminating || st.Drain != "none" {
		t.Errorf("state got %+v, want terminating without a drain (DrainOnTerminate is off)", st)
	}
}

func TestTokenRefusedAndAccepted(t *testing.T) {
	t.Parallel()
	ready := filepath.Join(t.TempDir(), "ok")
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{Token: "s3cret", ReadyFile: ready, Drain: quit.Drain{Period: time.Second}, Logger: testproc.Logger(t)}
	for _, path := range []string{"/shutdown", "/drain", "/waitforshutdown", "/shutdown/ready", "/waitz"} {
		w := record(s, http.MethodGet, path)
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without token got %d (WWW-Authenticate %q), want 401 with the header", path, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		if w := record(s, http.MethodGet, path, TokenHeader, "guess"); w.Code != http.StatusForbidden {
			t.Errorf("GET %s with a wrong token got %d, want 403", path, w.Code)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/status", "/anything"} {
		if w := record(s, http.MethodGet, path); w.Code != http.StatusOK {
			t.Errorf("GET %s without token got %d, want 200: probes never need it", path, w.Code)
		}
	}
	if w := record(s, http.MethodGet, "/shutdown/ready", TokenHeader, "s3cret"); w.Code != http.StatusOK {
		t.Errorf("GET /shutdown/ready with the token got %d %q, want 200", w.Code, w.Body.String())
	}
	if st := s.State(); st.Drain != "none" {
		t.Errorf("a refused request started a drain: %+v", st)
	}
}

func TestBadQueryIs400(t *testing.T) {
	t.Parallel()
	s := &Server{Drain: quit.Drain{Delay: time.Second, Period: time.Second, Deadline: time.Minute}, Logger: testproc.Logger(t)}
	drainPaths, allPaths := []string{"/shutdown", "/drain"}, []string{"/shutdown", "/drain", "/waitforshutdown"}
	for _, c := range []struct {
		q     string
		paths []string
	}{
		{"delay=-1", allPaths},
		{"delay=abc", allPaths},
		{"period=0", allPaths},
		{"deadline=-3", allPaths},
		{"deadline=0", allPaths},
		{"deadline=1&delay=1&period=1", drainPaths}, // only a drain uses delay and period
		{"period=1h&deadline=2", drainPaths},
	} {
		for _, path := range c.paths {
			w := record(s, http.MethodGet, path+"?"+c.q)
			body := w.Body.String()
			if w.Code != http.StatusBadRequest || strings.Count(body, "\n") != 1 {
				t.Errorf("GET %s?%s got %d %q, want 400 with one line", path, c.q, w.Code, body)
			}
		}
	}
	if st := s.State(); st.Drain != "none" || st.Terminating {
		t.Errorf("a bad request changed the state: %+v", st)
	}
	if w := record(s, http.MethodGet, "/shutdown"); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "missing envoy admin") {
		t.Errorf("/shutdown without an admin client got %d %q, want 503", w.Code, w.Body.String())
	}
	if w := record(s, http.MethodDelete, "/shutdown"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" {
		t.Errorf("DELETE /shutdown got %d, want 405 with Allow", w.Code)
	}
}

// TestWaitDeadlineNotHeldAgainstDelayAndPeriod: /waitforshutdown and the
// ready-file waits start no drain, so a deadline shorter than the drain's
// delay+period is theirs to choose: they wait that long and answer 408,
// not 400.
func TestWaitDeadlineNotHeldAgainstDelayAndPeriod(t *testing.T) {
	t.Parallel()
	ready := filepath.Join(t.TempDir(), "ok")
	drain := quit.Drain{StartDelay: time.Second, Delay: 5 * time.Second, Period: time.Second, Deadline: time.Minute}
	for _, c := range []struct {
		path, want string
		only       bool // ReadyFileOnly
	}{
		{"/waitforshutdown?deadline=0.2", "deadline: no drain started within 200ms", false},
		{"/waitforshutdown?deadline=0.2", "deadline: no ready file", true},
		{"/shutdown?deadline=0.2", "deadline: no ready file", true},
		{"/shutdown/ready?deadline=0.2", "deadline: no ready file", false},
	} {
		s := &Server{Drain: drain, ReadyFile: ready, ReadyFileOnly: c.only, ReadyFileInterval: 10 * time.Millisecond, Logger: testproc.Logger(t)}
		w := record(s, http.MethodGet, c.path)
		if body := w.Body.String(); w.Code != http.StatusRequestTimeout || !strings.HasPrefix(body, c.want) {
			t.Errorf("GET %s (ready-file-only %v) got %d %q, want 408 %q...", c.path, c.only, w.Code, body, c.want)
		}
	}
	// A drain still needs the room for its delays.
	s := &Server{Drain: drain, Logger: testproc.Logger(t)}
	w := record(s, http.MethodGet, "/shutdown?deadline=0.2")
	if body := w.Body.String(); w.Code != http.StatusBadRequest || !strings.Contains(body, "shorter than start-drain-delay+delay+period (7s)") {
		t.Errorf("GET /shutdown?deadline=0.2 got %d %q, want 400 shorter than start-drain-delay+delay+period", w.Code, body)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	admin, err := envoy.New(e.AdminURL(), envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		s    *Server
		want error
	}{
		{"no admin", &Server{Addr: "127.0.0.1:0", Drain: quit.Drain{Period: time.Second}}, ErrMissingAdmin},
		{"ready-file-only without file", &Server{Addr: "127.0.0.1:0", ReadyFileOnly: true, Drain: quit.Drain{Admin: admin, Period: time.Second}}, ErrMissingReadyFile},
		{"zero period", &Server{Addr: "127.0.0.1:0", Drain: quit.Drain{Admin: admin}}, ErrBadSetting},
		{"negative cooldown", &Server{Addr: "127.0.0.1:0", Cooldown: -1, Drain: quit.Drain{Admin: admin, Period: time.Second}}, ErrBadSetting},
	}
	for _, c := range cases {
		if err := c.s.Open(); !errors.Is(err, c.want) {
			t.Errorf("%s: Open got %v, want %v", c.name, err, c.want)
			_ = c.s.Close()
		}
	}
	s := MustOpenServer(t, e, nil)
	busy := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port()), Drain: quit.Drain{Admin: admin, Period: time.Second}}
	if err := busy.Open(); err == nil {
		t.Error("Open on a busy port succeeded")
		_ = busy.Close()
	}
	if err := s.Open(); !errors.Is(err, ErrAlreadyOpen) {
		t.Errorf("second Open got %v, want ErrAlreadyOpen", err)
	}
}

// TestShutdownBlocksUntilConnectionsClose is the shutdown handler's layout:
// /shutdown drains and blocks while a connection is open, /waitforshutdown
// returns right after it.
func TestShutdownBlocksUntilConnectionsClose(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	ready := filepath.Join(t.TempDir(), "ok")
	s := MustOpenServer(t, e, func(s *Server) { s.ReadyFile = ready })
	waitfor := goCall(s, "/waitforshutdown")
	testproc.WaitFor(t, "the waiter to be counted", func() bool { return s.State().Waiters == 1 })
	shutdown := goCall(s, "/shutdown?delay=0&period=0.01")
	envoytest.WaitRequests(t, e, "/stats", 3)
	pending(t, shutdown, "/shutdown")
	pending(t, waitfor, "/waitforshutdown")
	if fileExists(ready) {
		t.Error("ready file written while a connection is open")
	}
	h.Release()
	if err := <-inflight; err != nil {
		t.Errorf("the held request failed: %v", err)
	}
	a := recv(t, shutdown, "/shutdown")
	if a.status != http.StatusOK || !strings.HasPrefix(a.body, "drained: 0 open connections") {
		t.Errorf("/shutdown got %d %q, want 200 drained", a.status, a.body)
	}
	if b := recv(t, waitfor, "/waitforshutdown"); b.status != http.StatusOK {
		t.Errorf("/waitforshutdown got %d %q, want 200", b.status, b.body)
	}
	if !fileExists(ready) {
		t.Error("ready file not written after the drain")
	}
	if n := envoytest.Posts(e.Requests(), "/healthcheck/fail"); n != 1 {
		t.Errorf("healthcheck/fail calls got %d, want 1", n)
	}
}

func TestEveryCallerJoinsOneDrain(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	s := MustOpenServer(t, e, nil)
	calls := []<-chan answer{goCall(s, "/shutdown")}
	testproc.WaitFor(t, "the drain to start", func() bool { return s.State().Drain == "running" })
	for i := 1; i < 10; i++ {
		path := "/shutdown"
		if i%2 == 1 {
			path = "/drain?delay=3" // a joiner's delay changes nothing
		}
		calls = append(calls, goCall(s, path))
	}
	testproc.WaitFor(t, "every caller to wait", func() bool { return s.State().Waiters == 10 })
	h.Release()
	<-inflight
	for i, ch := range calls {
		if a := recv(t, ch, "caller"); a.status != http.StatusOK {
			t.Errorf("caller %d got %d %q, want 200", i, a.status, a.body)
		}
	}
	if n := envoytest.Posts(e.Requests(), "/healthcheck/fail"); n != 1 {
		t.Errorf("healthcheck/fail calls got %d, want 1: a second drain started", n)
	}
	if n := envoytest.Posts(e.Requests(), "/drain_listeners"); n != 1 {
		t.Errorf("drain_listeners calls got %d, want 1", n)
	}
	// A caller after the end gets the same outcome at once.
	if a := call(context.Background(), s, http.MethodGet, "/shutdown"); a.status != http.StatusOK {
		t.Errorf("late /shutdown got %d %q, want 200", a.status, a.body)
	}
}

func TestDeadlineIs408WithTheConnectionCounted(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	s := MustOpenServer(t, e, nil)
	waitfor := goCall(s, "/waitforshutdown?deadline=10")
	// The deadline covers the admin calls before the first poll too: 2s
	// leaves them room on a loaded machine, so the polls count the connection.
	a := call(context.Background(), s, http.MethodGet, "/shutdown?delay=0&period=0.02&deadline=2")
	if a.status != http.StatusRequestTimeout || !strings.Contains(a.body, "1 connections still open") {
		t.Errorf("/shutdown got %d %q, want 408 with 1 connection", a.status, a.body)
	}
	if b := recv(t, waitfor, "/waitforshutdown"); b.status != http.StatusRequestTimeout {
		t.Errorf("/waitforshutdown got %d %q, want the drain's 408", b.status, b.body)
	}
	if n := e.ActiveConnections(); n != 1 {
		t.Errorf("fake connections got %d, want 1", n)
	}
	if st := s.State(); st.Drain != "done" || st.Reason != "deadline" || st.Remaining != 1 {
		t.Errorf("state got %+v", st)
	}
}

func TestJoinerDeadline(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	s := MustOpenServer(t, e, nil)
	first := goCall(s, "/shutdown?delay=0")
	envoytest.WaitRequests(t, e, "/stats", 1)
	a := call(context.Background(), s, http.MethodGet, "/drain?deadline=0.1")
	if a.status != http.StatusRequestTimeout || !strings.Contains(a.body, "drain still running") {
		t.Errorf("joiner got %d %q, want 408 at its own deadline", a.status, a.body)
	}
	pending(t, first, "the first /shutdown")
	h.Release()
	if b := recv(t, first, "/shutdown"); b.status != http.StatusOK {
		t.Errorf("first /shutdown got %d %q, want 200", b.status, b.body)
	}
}

// TestCallerLeavingDoesNotCancelTheDrain: the drain runs on the server's
// context, not the request's.
func TestCallerLeavingDoesNotCancelTheDrain(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	ready := filepath.Join(t.TempDir(), "ok")
	s := MustOpenServer(t, e, func(s *Server) { s.ReadyFile = ready })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan answer, 1)
	go func() { done <- call(ctx, s, http.MethodGet, "/shutdown?delay=0") }()
	envoytest.WaitRequests(t, e, "/stats", 2)
	cancel()
	if a := <-done; a.err == nil {
		t.Fatalf("cancelled call got an answer: %d %q", a.status, a.body)
	}
	testproc.WaitFor(t, "the waiter to leave", func() bool { return s.State().Waiters == 0 })
	h.Release()
	<-inflight
	testproc.WaitFor(t, "the drain to finish", func() bool { return s.State().Drain == "done" })
	if st := s.State(); st.Reason != "drained" || !st.ReadyFile {
		t.Errorf("state got %+v, want drained with the ready file", st)
	}
}

func TestWaitersBeyondTheBoundGet503(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	s := MustOpenServer(t, e, func(s *Server) { s.MaxWaiters, s.Interval = 2, time.Hour })
	w1, w2 := goCall(s, "/waitforshutdown"), goCall(s, "/waitz")
	testproc.WaitFor(t, "two waiters", func() bool { return s.State().Waiters == 2 })
	a := call(context.Background(), s, http.MethodGet, "/waitforshutdown")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "max 2") {
		t.Errorf("third waiter got %d %q, want 503", a.status, a.body)
	}
	if a := call(context.Background(), s, http.MethodGet, "/healthz"); a.status != http.StatusOK {
		t.Errorf("/healthz while full got %d, want 200", a.status)
	}
	// Close answers the waiters instead of cutting them off.
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, ch := range []<-chan answer{w1, w2} {
		if a := recv(t, ch, "waiter"); a.status != http.StatusServiceUnavailable || a.body != "manager exiting\n" {
			t.Errorf("waiter at Close got %d %q, want 503 manager exiting", a.status, a.body)
		}
	}
}

func TestCloseCancelsTheDrain(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	ready := filepath.Join(t.TempDir(), "ok")
	s := MustOpenServer(t, e, func(s *Server) { s.ReadyFile = ready })
	shutdown := goCall(s, "/shutdown?delay=0")
	envoytest.WaitRequests(t, e, "/stats", 1)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if a := recv(t, shutdown, "/shutdown"); a.status != http.StatusServiceUnavailable {
		t.Errorf("/shutdown at Close got %d %q, want 503", a.status, a.body)
	}
	if fileExists(ready) {
		t.Error("ready file written for a cancelled drain")
	}
}

func TestWaitzReleasedAfterQuietAndCooldown(t *testing.T) {
	t.Parallel()
	const interval, cooldown = 60 * time.Millisecond, 40 * time.Millisecond
	s := &Server{Interval: interval, Cooldown: cooldown, Logger: testproc.Logger(t)}
	done := make(chan *httptest.ResponseRecorder, 1)
	var last time.Time
	for i := 0; i < 5; i++ {
		last = time.Now()
		record(s, http.MethodGet, "/probe")
		if i == 0 {
			go func() { done <- record(s, http.MethodGet, "/waitz") }()
		}
	}
	w := <-done
	if took := time.Since(last); took < interval+cooldown {
		t.Errorf("/waitz returned %v after the last hit, want at least %v", took, interval+cooldown)
	}
	if w.Code != http.StatusOK {
		t.Errorf("/waitz got %d %q, want 200", w.Code, w.Body.String())
	}
	s.WaitzTimeout = time.Nanosecond // the bound: hits that never stop
	s.Interval = time.Hour
	if w := record(s, http.MethodGet, "/waitz"); w.Code != http.StatusRequestTimeout {
		t.Errorf("/waitz past its timeout got %d, want 408", w.Code)
	}
}

func TestReadyFileOnly(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	ready := filepath.Join(t.TempDir(), "ok")
	if err := os.WriteFile(ready, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := MustOpenServer(t, e, func(s *Server) { s.ReadyFile, s.ReadyFileOnly = ready, true })
	if fileExists(ready) {
		t.Fatal("stale ready file not removed on Open")
	}
	shutdown, waitfor := goCall(s, "/shutdown"), goCall(s, "/waitforshutdown")
	// Waiters counts a request once it is admitted, before /shutdown has
	// marked the termination: wait for the termination itself.
	testproc.WaitFor(t, "/shutdown to start the termination, with both callers waiting", func() bool {
		st := s.State()
		return st.Terminating && st.Waiters == 2
	})
	if a := call(context.Background(), s, http.MethodGet, "/shutdown/ready?deadline=0.05"); a.status != http.StatusRequestTimeout {
		t.Errorf("/shutdown/ready without file got %d %q, want 408", a.status, a.body)
	}
	pending(t, shutdown, "/shutdown")
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan answer{shutdown, waitfor} {
		if a := recv(t, ch, "ready-file waiter"); a.status != http.StatusOK {
			t.Errorf("waiter got %d %q, want 200", a.status, a.body)
		}
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("ready-file-only /shutdown made %d admin calls, want none", n)
	}
}

// watchLogger logs to tb and closes the returned channel at the first
// line that contains substr.
func watchLogger(tb testing.TB, substr string) (hclog.Logger, <-chan struct{}) {
	w := &watchWriter{Writer: testproc.LogWriter(tb), substr: []byte(substr), seen: make(chan struct{})}
	return hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: w}), w.seen
}

// watchWriter closes seen at the first write that contains substr.
type watchWriter struct {
	io.Writer
	substr []byte
	once   sync.Once
	seen   chan struct{}
}

func (w *watchWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, w.substr) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.Writer.Write(p)
}

// TestReadyFileOnlyLooksAgainOnExit: a ready-file waiter that is answered
// because the manager exits looks for the file once more, so a file written
// since its last look (Contour's layout: the exec hook writes it, then
// kubelet sends the manager SIGTERM at once) gets 200, not 503.
func TestReadyFileOnlyLooksAgainOnExit(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/shutdown", "/waitforshutdown"} {
		for _, tc := range []struct {
			name   string
			write  bool
			status int
			body   string
		}{
			{"file written before exit", true, http.StatusOK, "ready file"},
			{"no file", false, http.StatusServiceUnavailable, "manager exiting"},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				e, _ := startEnvoy(t, envoyfake.Options{})
				ready := filepath.Join(t.TempDir(), "ok")
				log, looked := watchLogger(t, "ready file does not exist yet")
				s := MustOpenServer(t, e, func(s *Server) {
					s.ReadyFile, s.ReadyFileOnly, s.Logger = ready, true, log
					s.ReadyFileInterval = time.Hour // no look of its own before the exit
				})
				ch := goCall(s, path)
				testproc.WaitClosed(t, path+" to look for the ready file", looked)
				if tc.write {
					if err := os.WriteFile(ready, nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				pending(t, ch, path)
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if a := recv(t, ch, path); a.status != tc.status || !strings.HasPrefix(a.body, tc.body) {
					t.Errorf("%s at exit got %d %q, want %d %s...", path, a.status, a.body, tc.status, tc.body)
				}
			})
		}
	}
}

func TestOpenUndoesAnEarlierDrain(t *testing.T) {
	t.Parallel()
	for _, content := range []string{`{"healthcheck_failed":true,"listeners_drained":true}`, "garbage"} {
		e, _ := startEnvoy(t, envoyfake.Options{})
		admin, err := envoy.New(e.AdminURL(), envoy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.FailHealthchecks(context.Background()); err != nil {
			t.Fatal(err)
		}
		stateFile := filepath.Join(t.TempDir(), "state")
		if err := os.WriteFile(stateFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		MustOpenServer(t, e, func(s *Server) { s.StateFile = stateFile })
		envoytest.WaitRequests(t, e, "/healthcheck/ok", 1)
		if st := e.State(); st != envoyfake.StateLive {
			t.Errorf("state file %q: envoy state got %s, want LIVE", content, st)
		}
		testproc.WaitFor(t, "the state file to go", func() bool { return !fileExists(stateFile) })
	}
	// No state file: no admin call at all.
	e, _ := startEnvoy(t, envoyfake.Options{})
	s := MustOpenServer(t, e, func(s *Server) { s.StateFile = filepath.Join(t.TempDir(), "none") })
	_ = s.Close()
	if n := len(e.Requests()); n != 0 {
		t.Errorf("start without a state file made %d admin calls", n)
	}
}

func TestDrainWritesTheStateFile(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	stateFile := filepath.Join(t.TempDir(), "state")
	s := MustOpenServer(t, e, func(s *Server) { s.StateFile = stateFile })
	if a := call(context.Background(), s, http.MethodGet, "/shutdown?delay=0"); a.status != http.StatusOK {
		t.Fatalf("/shutdown got %d %q", a.status, a.body)
	}
	b, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil || !st.HealthcheckFailed || st.PID != os.Getpid() {
		t.Errorf("state file got %s (%v), want healthcheck_failed and our pid", b, err)
	}
}

func TestTerminateWithDrainAndWaitIdle(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	s := MustOpenServer(t, e, func(s *Server) {
		s.DrainOnTerminate = true
		s.Interval, s.Cooldown = 20*time.Millisecond, 20*time.Millisecond
	})
	record(s, http.MethodGet, "/lb")
	s.Terminate("test")
	idle := make(chan error, 1)
	go func() { idle <- s.WaitIdle(context.Background()) }()
	envoytest.WaitRequests(t, e, "/stats", 2)
	select {
	case err := <-idle:
		t.Fatalf("WaitIdle returned while the drain runs: %v", err)
	default:
	}
	h.Release()
	if err := <-idle; err != nil {
		t.Errorf("WaitIdle: %v", err)
	}
	if st := s.State(); st.Drain != "done" {
		t.Errorf("state got %+v, want the drain done", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2 := &Server{Interval: time.Hour}
	record(s2, http.MethodGet, "/lb")
	if err := s2.WaitIdle(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitIdle with a cancelled context got %v", err)
	}
}

func TestOnceWritesFiles(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	admin, err := envoy.New(e.AdminURL(), envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ready, stateFile := filepath.Join(dir, "ok"), filepath.Join(dir, "state")
	if err := os.WriteFile(ready, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Once{Drain: quit.Drain{Admin: admin, Period: 10 * time.Millisecond}, ReadyFile: ready, StateFile: stateFile, Logger: testproc.Logger(t)}
	if res, err := o.Run(context.Background()); res.Reason != quit.ReasonDrained || err != nil {
		t.Errorf("reason got %q, %v; want drained, nil", res.Reason, err)
	}
	if !fileExists(ready) || !fileExists(stateFile) {
		t.Error("ready or state file missing after the drain")
	}
	// Cancelled: the stale file is removed and no new one written. A new
	// Envoy: the first one's listener is draining.
	e, h := startEnvoy(t, envoyfake.Options{})
	if o.Drain.Admin, err = envoy.New(e.AdminURL(), envoy.Options{}); err != nil {
		t.Fatal(err)
	}
	envoytest.Hold(t, e, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan quit.Result, 1)
	go func() { res, _ := o.Run(ctx); done <- res }()
	envoytest.WaitRequests(t, e, "/stats", 3)
	cancel()
	if res := <-done; res.Reason != quit.ReasonCancelled {
		t.Errorf("reason got %q, want cancelled", res.Reason)
	}
	if fileExists(ready) {
		t.Error("ready file present after a cancelled drain")
	}
}
