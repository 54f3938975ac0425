package envoyfake

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

func TestRealConnectionCounts(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	lp := "listener." + strings.ReplaceAll(e.ListenerAddr(), ":", "_")
	const n = 3
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial(t, e.ListenerAddr())
	}
	testproc.WaitFor(t, "3 connections", func() bool { return e.ActiveConnections() == n })

	body := call(t, "GET", e.AdminURL()+"/stats").body
	for name, want := range map[string]string{
		lp + ".downstream_cx_active":             "3",
		lp + ".worker_0.downstream_cx_active":    "2",
		lp + ".worker_1.downstream_cx_active":    "1",
		"http.ingress_http.downstream_cx_active": "3",
		"server.total_connections":               "3",
	} {
		if got, _ := statValue(body, name); got != want {
			t.Errorf("%s got %q, want %s", name, got, want)
		}
	}
	prom := call(t, "GET", e.AdminURL()+"/stats/prometheus").body
	if want := fmt.Sprintf(`envoy_listener_downstream_cx_active{envoy_listener_address=%q} 3`, strings.TrimPrefix(lp, "listener.")); !strings.Contains(prom, want) {
		t.Errorf("prometheus lacks %s", want)
	}

	for _, c := range conns {
		_ = c.Close()
	}
	testproc.WaitFor(t, "0 connections", func() bool { return e.ActiveConnections() == 0 })
	body = call(t, "GET", e.AdminURL()+"/stats").body
	if got, _ := statValue(body, lp+".downstream_cx_active"); got != "0" {
		t.Errorf("gauge after close got %q, want 0", got)
	}
}

func TestNonGracefulDrainStopsAccepting(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	c := dial(t, e.ListenerAddr())
	br := bufio.NewReader(c)
	testproc.WaitFor(t, "connection counted", func() bool { return e.ActiveConnections() == 1 })

	if a := call(t, "POST", e.AdminURL()+"/drain_listeners?inboundonly"); a.status != 200 || a.body != "OK\n" {
		t.Fatalf("drain got %d %q", a.status, a.body)
	}
	if !refused(e.ListenerAddr()) {
		t.Error("listener still accepts after a non-graceful drain")
	}
	// The open connection is left alone and still served.
	if e.ActiveConnections() != 1 {
		t.Errorf("ActiveConnections got %d, want 1", e.ActiveConnections())
	}
	resp, _ := roundTrip(t, c, br, "/")
	if resp.StatusCode != http.StatusNotFound || resp.Close {
		t.Errorf("open connection got %d close=%v, want 404 keep-alive", resp.StatusCode, resp.Close)
	}
	if st := e.State(); st != StateLive {
		t.Errorf("State got %s, want LIVE", st)
	}
}

func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release, free := releaser()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	t.Cleanup(free) // runs first: up.Close waits for the blocked handler
	e := mustStart(t, Options{Upstream: strings.TrimPrefix(up.URL, "http://")})

	// idle: a keep-alive connection after one request.
	idle := dial(t, e.ListenerAddr())
	idleBR := bufio.NewReader(idle)
	if resp, body := roundTrip(t, idle, idleBR, "/fast"); resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("proxy got %d %q", resp.StatusCode, body)
	}
	// fresh: connected, no request yet.
	fresh := dial(t, e.ListenerAddr())
	// busy: a request in flight at the upstream.
	busy := dial(t, e.ListenerAddr())
	busyBR := bufio.NewReader(busy)
	if _, err := io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-entered
	testproc.WaitFor(t, "3 connections", func() bool { return e.ActiveConnections() == 3 })

	if a := call(t, "POST", e.AdminURL()+"/drain_listeners?inboundonly&graceful&skip_exit"); a.status != 200 || a.body != "OK\n" {
		t.Fatalf("drain got %d %q", a.status, a.body)
	}
	expectEOF(t, idle)
	expectEOF(t, fresh)
	testproc.WaitFor(t, "idle connections closed", func() bool { return e.ActiveConnections() == 1 })

	// The socket still accepts, but a new connection is closed unread.
	late := dial(t, e.ListenerAddr())
	expectEOF(t, late)
	if n := e.ActiveConnections(); n != 1 {
		t.Errorf("ActiveConnections got %d, want 1", n)
	}

	// The request in flight completes with Connection: close.
	free()
	resp, body := readResponse(t, busyBR)
	if resp.StatusCode != 200 || body != "hello" || !resp.Close {
		t.Errorf("in-flight answer got %d %q close=%v, want 200 hello close", resp.StatusCode, body, resp.Close)
	}
	expectEOF(t, busy)
	testproc.WaitFor(t, "all connections closed", func() bool { return e.ActiveConnections() == 0 })

	if st := e.State(); st != StateLive {
		t.Errorf("State got %s, want LIVE (drain_listeners does not change state)", st)
	}
	// A repeat call is a no-op returning OK.
	if a := call(t, "POST", e.AdminURL()+"/drain_listeners?graceful"); a.status != 200 || a.body != "OK\n" {
		t.Errorf("repeat drain got %d %q", a.status, a.body)
	}
}

func TestGracefulFalseCountsAsGraceful(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	if a := call(t, "POST", e.AdminURL()+"/drain_listeners?graceful=false&skip_exit"); a.status != 200 {
		t.Fatalf("got %d %q, want 200", a.status, a.body)
	}
	if refused(e.ListenerAddr()) {
		t.Error("graceful drain stopped the listening socket")
	}
	expectEOF(t, dial(t, e.ListenerAddr()))
}

func TestReverseProxy(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release, free := releaser()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		w.Header().Set("Server", "app")
		_, _ = fmt.Fprintf(w, "app %s %s", r.Host, r.URL.Path)
	}))
	t.Cleanup(up.Close)
	t.Cleanup(free) // runs first: up.Close waits for the blocked handler
	e := mustStart(t, Options{Upstream: strings.TrimPrefix(up.URL, "http://")})

	a := call(t, "GET", "http://"+e.ListenerAddr()+"/hello")
	if want := "app " + e.ListenerAddr() + " /hello"; a.status != 200 || a.body != want {
		t.Errorf("got %d %q, want 200 %q", a.status, a.body, want)
	}
	if s := a.header.Get("Server"); s != "envoy" {
		t.Errorf("Server got %q, want envoy", s)
	}

	done := make(chan error, 1)
	go func() {
		resp, err := testClient.Get("http://" + e.ListenerAddr() + "/slow")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	<-entered
	body := call(t, "GET", e.AdminURL()+"/stats?filter=ingress_http").body
	if v, _ := statValue(body, "http.ingress_http.downstream_rq_active"); v != "1" {
		t.Errorf("downstream_rq_active got %q, want 1", v)
	}
	free()
	if err := <-done; err != nil {
		t.Errorf("slow request: %v", err)
	}
}

func TestReverseProxyUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	e := mustStart(t, Options{Upstream: dead})
	a := call(t, "GET", "http://"+e.ListenerAddr()+"/")
	if a.status != 503 || a.body != upstreamFailure {
		t.Errorf("got %d %q, want 503 %q", a.status, a.body, upstreamFailure)
	}
}

func TestNoRoute(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	a := call(t, "GET", "http://"+e.ListenerAddr()+"/")
	if a.status != 404 || a.body != "" || a.header.Get("Server") != "envoy" {
		t.Errorf("got %d %q %v, want 404 empty from envoy", a.status, a.body, a.header)
	}
}

func TestHealthPath(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{HealthPath: "/healthz"})
	hc := "http://" + e.ListenerAddr() + "/healthz"
	kc := keepAliveClient(t) // so "Connection: close" can only come from the fake
	if a := callWith(t, kc, "GET", hc, "", ""); a.status != 200 || a.resp.Close {
		t.Errorf("before fail got %d close=%v, want 200 keep-alive", a.status, a.resp.Close)
	}
	call(t, "POST", e.AdminURL()+"/healthcheck/fail")
	a := callWith(t, kc, "GET", hc, "", "")
	if a.status != 503 || a.body != "" {
		t.Errorf("after fail got %d %q, want 503 empty", a.status, a.body)
	}
	if !a.resp.Close {
		t.Error("no Connection: close while health checks fail")
	}
	if refused(e.ListenerAddr()) {
		t.Error("listener stopped accepting on /healthcheck/fail")
	}
	call(t, "POST", e.AdminURL()+"/healthcheck/ok")
	if a := call(t, "GET", hc); a.status != 200 {
		t.Errorf("after ok got %d, want 200", a.status)
	}
}

func keepAliveClient(tb testing.TB) *http.Client {
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: testTimeout, Transport: tr}
}

// releaser returns a channel that blocked handlers wait on and an idempotent
// func that closes it.
func releaser() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}
