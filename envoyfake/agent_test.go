package envoyfake

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

func mustStartAgent(tb testing.TB, e *Envoy) *PilotAgent {
	tb.Helper()
	p, err := StartPilotAgent(e, AgentOptions{Logf: tb.Logf})
	if err != nil {
		tb.Fatalf("StartPilotAgent: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("agent Close: %v", err)
		}
	})
	return p
}

// TestAgentGate drives the handler with fake remote addresses, since a
// non-loopback caller cannot be produced from a loopback-only test.
func TestAgentGate(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	p := mustStartAgent(t, e)
	cases := []struct {
		name, method, path, remote string
		status                     int
		body                       string
	}{
		{"quit from pod IP", "POST", "/quitquitquit", "10.1.2.3:4567", 403, "Only requests from localhost are allowed\n"},
		{"drain from IPv6", "POST", "/drain", "[2001:db8::1]:80", 403, "Only requests from localhost are allowed\n"},
		{"quit non-loopback GET is 403 first", "GET", "/quitquitquit", "192.0.2.1:1", 403, "Only requests from localhost are allowed\n"},
		{"unparsable remote", "POST", "/quitquitquit", "garbage", 403, "Only requests from localhost are allowed\n"},
		{"quit GET", "GET", "/quitquitquit", "127.0.0.1:5555", 405, "Method Not Allowed\n"},
		{"drain PUT from ::1", "PUT", "/drain", "[::1]:5555", 405, "Method Not Allowed\n"},
		{"unknown", "GET", "/nope", "127.0.0.1:5555", 404, "404 page not found\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.RemoteAddr = tc.remote
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if rec.Code != tc.status || rec.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.status, tc.body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("content-type got %q", ct)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("nosniff missing")
			}
		})
	}
	// None of them reached Envoy or stopped anything.
	if n := len(e.Requests()); n != 0 {
		t.Errorf("Envoy saw %d requests, want 0", n)
	}
	if testproc.IsClosed(e.Quit()) || testproc.IsClosed(p.Quit()) {
		t.Error("a refused call stopped something")
	}
}

// TestAgentUnknownAppProbe: with no app probers configured, pilot-agent
// answers every /app-health/ and /app-lifecycle/ path 400 with its own
// (misspelt) line, written without http.Error (envoy-admin.md §3).
func TestAgentUnknownAppProbe(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	p := mustStartAgent(t, e)
	for _, c := range []struct{ method, path string }{
		{"GET", "/app-health/nope/readyz"},
		{"GET", "/app-health/app/livez"},
		{"GET", "/app-lifecycle/app/prestopz"},
		{"POST", "/app-lifecycle/app/poststartz"},
		{"GET", "/app-health/"},
	} {
		a := call(t, c.method, p.URL()+c.path)
		if want := "app prober config does not exists for " + c.path; a.status != http.StatusBadRequest || a.body != want {
			t.Errorf("%s %s got %d %q, want 400 %q", c.method, c.path, a.status, a.body, want)
		}
		if ct := a.resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s %s content-type got %q", c.method, c.path, ct)
		}
		if ns := a.resp.Header.Get("X-Content-Type-Options"); ns != "" {
			t.Errorf("%s %s X-Content-Type-Options got %q, want none", c.method, c.path, ns)
		}
	}
	// Other unknown paths stay 404, as pilot-agent's mux answers them.
	if a := call(t, "GET", p.URL()+"/app-healthz"); a.status != http.StatusNotFound {
		t.Errorf("/app-healthz got %d %q, want 404", a.status, a.body)
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("Envoy saw %d requests, want 0", n)
	}
}

func TestAgentDrain(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	p := mustStartAgent(t, e)
	a := call(t, "POST", p.URL()+"/drain")
	if a.status != 200 || a.body != "OK" || a.resp.ContentLength != 2 {
		t.Fatalf("got %d %q len=%d, want 200 OK (no newline)", a.status, a.body, a.resp.ContentLength)
	}
	reqs := e.Requests()
	if len(reqs) != 1 {
		t.Fatalf("Envoy saw %v, want one drain", reqs)
	}
	if r := reqs[0]; r.Method != "POST" || r.Path != "/drain_listeners" || r.RawQuery != "inboundonly&graceful&skip_exit" || r.Status != 200 {
		t.Errorf("Envoy saw %+v", r)
	}
	expectEOF(t, dial(t, e.ListenerAddr())) // gracefully draining: new connections closed
	if st := e.State(); st != StateLive {
		t.Errorf("State got %s, want LIVE", st)
	}
}

func TestAgentDrainAnswersOKWhenEnvoyIsGone(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	p := mustStartAgent(t, e)
	e.Kill()
	if a := call(t, "POST", p.URL()+"/drain"); a.status != 200 || a.body != "OK" {
		t.Errorf("got %d %q, want 200 OK", a.status, a.body)
	}
}

func TestAgentQuit(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	p := mustStartAgent(t, e)
	if a := call(t, "GET", p.URL()+"/quitquitquit"); a.status != 405 || a.body != "Method Not Allowed\n" {
		t.Fatalf("GET got %d %q", a.status, a.body)
	}
	if testproc.IsClosed(p.Quit()) || testproc.IsClosed(e.Quit()) {
		t.Fatal("GET stopped something")
	}
	a := call(t, "POST", p.URL()+"/quitquitquit")
	if a.status != 200 || a.body != "OK" || a.header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("POST got %d %q %v", a.status, a.body, a.header)
	}
	testproc.WaitClosed(t, "agent Quit", p.Quit())
	testproc.WaitClosed(t, "envoy Quit", e.Quit())
	for _, r := range e.Requests() {
		if r.Path == "/quitquitquit" {
			t.Error("pilot-agent called Envoy's /quitquitquit; it kills Envoy instead")
		}
	}
	if !refused(strings.TrimPrefix(p.URL(), "http://")) {
		t.Error("status port still accepts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if r, err := p.WaitRequest(ctx, func(r Request) bool { return r.Method == "POST" && r.Path == "/quitquitquit" }); err != nil || r.Status != 200 {
		t.Errorf("WaitRequest got %+v %v", r, err)
	}
}

func TestAgentReadiness(t *testing.T) {
	t.Parallel()
	t.Run("never live", func(t *testing.T) {
		t.Parallel()
		e := mustStart(t, Options{NeverLive: true})
		p := mustStartAgent(t, e)
		a := call(t, "GET", p.URL()+"/healthz/ready")
		if a.status != 503 || a.body != "" || a.header.Get("Content-Type") != "" || a.header.Get("X-Content-Type-Options") != "" {
			t.Errorf("got %d %q %v, want a bare 503", a.status, a.body, a.header)
		}
	})
	t.Run("live then cached", func(t *testing.T) {
		t.Parallel()
		e := mustStart(t, Options{PreInitializing: 1})
		p := mustStartAgent(t, e)
		if a := call(t, "GET", p.URL()+"/healthz/ready"); a.status != 503 {
			t.Errorf("pre-init got %d, want 503", a.status)
		}
		// The first /server_info is the scripted PRE_INITIALIZING answer, the second LIVE.
		for range 2 {
			call(t, "GET", e.AdminURL()+"/server_info")
		}
		if a := call(t, "GET", p.URL()+"/healthz/ready"); a.status != 200 || a.body != "" {
			t.Errorf("live got %d %q, want 200 empty", a.status, a.body)
		}
		call(t, "POST", e.AdminURL()+"/healthcheck/fail")
		if a := call(t, "GET", p.URL()+"/healthz/ready"); a.status != 200 {
			t.Errorf("after healthcheck/fail got %d, want cached 200", a.status)
		}
		// pilot-agent's own stats queries, unencoded.
		found := false
		for _, r := range e.Requests() {
			if r.Path == "/stats" && r.RawQuery == `usedonly&filter=^(server\.state|listener_manager\.workers_started)` && r.Status == 200 {
				found = true
			}
		}
		if !found {
			t.Errorf("Envoy never saw pilot-agent's server stats query: %+v", e.Requests())
		}
	})
}

func TestAgentWithUnixSocketEnvoy(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{AdminSocket: filepath.Join(t.TempDir(), "a.sock")})
	p := mustStartAgent(t, e)
	if a := call(t, "GET", p.URL()+"/healthz/ready"); a.status != 200 {
		t.Errorf("ready got %d", a.status)
	}
	call(t, "POST", p.URL()+"/drain")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := e.WaitRequest(ctx, func(r Request) bool { return r.Path == "/drain_listeners" && r.Status == http.StatusOK }); err != nil {
		t.Error(err)
	}
}

func TestStartPilotAgentNeedsEnvoy(t *testing.T) {
	t.Parallel()
	if _, err := StartPilotAgent(nil, AgentOptions{}); err != ErrNoEnvoy {
		t.Errorf("got %v, want ErrNoEnvoy", err)
	}
}

// TestAgentReadinessChecks runs pilot-agent's probes against canned stats
// (envoy-admin.md §3): ready only with a successful CDS and LDS update, and
// Envoy LIVE with workers started, with pilot-agent's failure texts.
func TestAgentReadinessChecks(t *testing.T) {
	t.Parallel()
	const live = "server.state: 0\nlistener_manager.workers_started: 1\n"
	cases := []struct {
		name, config, server, err string
	}{
		{"ready", "cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 2\n", live, ""},
		{"nothing received", "", live, "config not received from XDS server (is Istiod running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected"},
		{"cds rejected", "cluster_manager.cds.update_rejected: 1\nlistener_manager.lds.update_success: 1\n", live, "config received from XDS server, but was rejected: cds updates: 0 successful, 1 rejected"},
		{"lds missing", "cluster_manager.cds.update_success: 1\n", live, "config not fully received from XDS server: "},
		{"no server.state", "cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n", "listener_manager.workers_started: 1\n", "server.state is not yet updated: "},
		{"no workers_started", "cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n", "server.state: 0\n", "listener_manager.workers_started is not yet updated: "},
		{"draining", "cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n", "server.state: 1\nlistener_manager.workers_started: 1\n", "server is not live, current state is: DRAINING"},
		{"workers not started", "cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n", "server.state: 0\nlistener_manager.workers_started: 0\n", "workers have not yet started"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.RawQuery, "server") {
					io.WriteString(w, c.server)
				} else {
					io.WriteString(w, c.config)
				}
			}))
			t.Cleanup(srv.Close)
			p := &PilotAgent{client: &http.Client{Timeout: testTimeout}, base: srv.URL}
			err := p.checkEnvoy(context.Background())
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)) {
				t.Errorf("checkEnvoy got %v, want %q", err, c.err)
			}
		})
	}
}
