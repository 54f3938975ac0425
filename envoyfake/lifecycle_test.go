package envoyfake

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

func TestQuitQuitQuit(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	open := dial(t, e.ListenerAddr())
	testproc.WaitFor(t, "connection counted", func() bool { return e.ActiveConnections() == 1 })

	a := call(t, "POST", e.AdminURL()+"/quitquitquit")
	if a.status != 200 || a.body != "OK\n" {
		t.Fatalf("got %d %q, want 200 OK", a.status, a.body)
	}
	testproc.WaitClosed(t, "Quit", e.Quit())
	if !refused(strings.TrimPrefix(e.AdminURL(), "http://")) {
		t.Error("admin still accepts after quit")
	}
	if !refused(e.ListenerAddr()) {
		t.Error("listener still accepts after quit")
	}
	expectEOF(t, open) // no drain: connections go with the process
	reqs := e.Requests()
	if last := reqs[len(reqs)-1]; last.Method != "POST" || last.Path != "/quitquitquit" || last.Status != 200 {
		t.Errorf("last request got %+v", last)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close after quit: %v", err)
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	open := dial(t, e.ListenerAddr())
	testproc.WaitFor(t, "connection counted", func() bool { return e.ActiveConnections() == 1 })
	e.Kill()
	if !testproc.IsClosed(e.Quit()) {
		t.Error("Quit not closed after Kill")
	}
	expectEOF(t, open)
	if !refused(strings.TrimPrefix(e.AdminURL(), "http://")) || !refused(e.ListenerAddr()) {
		t.Error("still accepting after Kill")
	}
	e.Kill() // idempotent
	if got := len(e.Requests()); got != 0 {
		t.Errorf("Requests got %d, want 0", got)
	}
}

func TestCloseIsBoundedAndIdempotent(t *testing.T) {
	t.Parallel()
	e, err := Start(Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	// Connections that never send anything, on every port, and an idle keep-alive one.
	_ = dial(t, e.ListenerAddr())
	_ = dial(t, strings.TrimPrefix(e.AdminURL(), "http://"))
	p, err := StartPilotAgent(e, AgentOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	_ = dial(t, strings.TrimPrefix(p.URL(), "http://"))
	callWith(t, keepAliveClient(t), "GET", e.AdminURL()+"/ready", "", "")
	testproc.WaitFor(t, "admin connections counted", func() bool { return e.adminCx.get() == 2 })
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Errorf("agent Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > closeTimeout/2 {
		t.Errorf("Close took %v; idle connections should not delay it", d)
	}
	if !testproc.IsClosed(e.Quit()) {
		t.Error("Quit not closed after Close")
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBlackHole(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{BlackHole: true})
	c := &http.Client{Timeout: 200 * time.Millisecond}
	_, err := c.Get(e.AdminURL() + "/ready")
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
	// The traffic listener is unaffected.
	if a := call(t, "GET", "http://"+e.ListenerAddr()+"/"); a.status != 404 {
		t.Errorf("listener got %d, want 404", a.status)
	}
}

func TestUnixSocketAdmin(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	e := mustStart(t, Options{AdminSocket: sock})
	if want := "unix://" + sock; e.AdminURL() != want {
		t.Fatalf("AdminURL got %q, want %q", e.AdminURL(), want)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Timeout: testTimeout, Transport: tr}
	if a := callWith(t, c, "GET", "http://unix/ready", "", ""); a.status != 200 || a.body != "LIVE\n" {
		t.Errorf("ready got %d %q", a.status, a.body)
	}
	if a := callWith(t, c, "GET", "http://unix/stats/prometheus?filter=^http", "", ""); !strings.Contains(a.body, `envoy_http_conn_manager_prefix="admin"`) {
		t.Errorf("stats got %q", a.body)
	}
	if a := callWith(t, c, "POST", "http://unix/quitquitquit", "", ""); a.status != 200 {
		t.Errorf("quit got %d", a.status)
	}
	testproc.WaitClosed(t, "Quit", e.Quit())
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestBusyPortFailsSynchronously(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	for name, o := range map[string]Options{
		"admin":    {AdminAddr: ln.Addr().String()},
		"listener": {ListenerAddr: ln.Addr().String()},
	} {
		if e, err := Start(o); err == nil {
			_ = e.Close()
			t.Errorf("%s: Start on a busy port succeeded", name)
		}
	}
}

func TestWaitRequest(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	errc := make(chan error, 1)
	go func() {
		resp, err := testClient.Post(e.AdminURL()+"/healthcheck/fail", "", nil)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	r, err := e.WaitRequest(ctx, func(r Request) bool { return r.Path == "/healthcheck/fail" })
	if err != nil {
		t.Fatalf("WaitRequest: %v", err)
	}
	if r.Method != "POST" || r.Status != 200 {
		t.Errorf("got %+v", r)
	}
	// The side effect is visible as soon as the request is.
	if st := e.State(); st != StateDraining {
		t.Errorf("State got %s, want DRAINING", st)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// Past requests match too; order is arrival order.
	call(t, "GET", e.AdminURL()+"/ready")
	call(t, "POST", e.AdminURL()+"/drain_listeners?graceful")
	if _, err := e.WaitRequest(ctx, func(r Request) bool { return r.Path == "/ready" }); err != nil {
		t.Errorf("past request: %v", err)
	}
	var paths []string
	for _, r := range e.Requests() {
		paths = append(paths, r.Method+" "+r.Path+"?"+r.RawQuery)
	}
	if got, want := strings.Join(paths, ","), "POST /healthcheck/fail?,GET /ready?,POST /drain_listeners?graceful"; got != want {
		t.Errorf("Requests got %s, want %s", got, want)
	}

	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if _, err := e.WaitRequest(short, func(r Request) bool { return r.Path == "/never" }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WaitRequest got %v", err)
	}
}
