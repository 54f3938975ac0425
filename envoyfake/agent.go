package envoyfake

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAgentEnvoyTimeout bounds each call the pilot-agent makes to Envoy's admin.
const DefaultAgentEnvoyTimeout = 2 * time.Second

// Pilot-agent answers (envoy-admin.md §3). The 403 and 405 bodies come from
// net/http's http.Error, hence the newline; "OK" has none.
const (
	agentForbidden = "Only requests from localhost are allowed"
	agentNotPOST   = "Method Not Allowed"
	agentOK        = "OK"
	agentNoProber  = "app prober config does not exists for " // sic, then the path
)

// istioDrainPath is what a sidecar pilot-agent POSTs to Envoy on /drain.
const istioDrainPath = "/drain_listeners?inboundonly&graceful&skip_exit"

// Readiness queries, unencoded as pilot-agent sends them.
const (
	istioConfigStats = `/stats?usedonly&filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`
	istioServerStats = `/stats?usedonly&filter=^(server\.state|listener_manager\.workers_started)`
)

// AgentOptions configures a fake pilot-agent status port.
type AgentOptions struct {
	// Addr is the status port address. Empty means "127.0.0.1:0" (the real
	// one binds all interfaces on 15020; the fake stays on loopback).
	Addr string
	// EnvoyTimeout bounds each call to Envoy's admin. Zero means DefaultAgentEnvoyTimeout.
	EnvoyTimeout time.Duration
	// Logf, if set, receives one line per request and notable events.
	Logf func(format string, args ...any)
}

// PilotAgent is a running fake of pilot-agent's status port, in front of one
// fake Envoy.
type PilotAgent struct {
	e       *Envoy
	logf    func(format string, args ...any)
	srv     *http.Server
	ln      *onceCloseListener
	conns   connStates
	quiet   atomic.Bool
	url     string
	rec     *recorder
	client  *http.Client
	base    string // Envoy admin base URL for client
	ready   atomic.Bool
	serveWG sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
	quit     chan struct{}
}

// StartPilotAgent listens on the status port, then serves it in the
// background. A busy address fails here, synchronously.
func StartPilotAgent(e *Envoy, o AgentOptions) (*PilotAgent, error) {
	if e == nil {
		return nil, ErrNoEnvoy
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	timeout := o.EnvoyTimeout
	if timeout <= 0 {
		timeout = DefaultAgentEnvoyTimeout
	}
	p := &PilotAgent{
		e:    e,
		logf: o.Logf,
		rec:  newRecorder(),
		quit: make(chan struct{}),
	}
	p.logf = quietable(o.Logf, &p.quiet)
	p.client, p.base = adminClient(e.AdminURL(), timeout)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on pilot-agent address: %w", err)
	}
	p.ln = &onceCloseListener{Listener: ln}
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       adminIOTimeout,
		WriteTimeout:      adminIOTimeout,
		IdleTimeout:       adminIdleTimeout,
		ConnState:         p.conns.track,
		ErrorLog:          log.New(logWriter(p.logf), "envoyfake pilot-agent: ", 0),
	}
	p.serveWG.Go(func() { _ = p.srv.Serve(p.ln) })
	p.logf("pilot-agent started url=%s envoy=%s", p.url, e.AdminURL())
	return p, nil
}

// adminClient builds a client for an admin URL, dialling the socket for unix://.
func adminClient(adminURL string, timeout time.Duration) (*http.Client, string) {
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		DialContext:       dialer.DialContext,
		DisableKeepAlives: true, // no idle connection lingers in listener.admin.downstream_cx_active
	}
	base := adminURL
	if sock, ok := strings.CutPrefix(adminURL, "unix://"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		}
		base = "http://localhost"
	}
	return &http.Client{Timeout: timeout, Transport: tr}, base
}

// URL is the status port base URL, "http://127.0.0.1:PORT".
func (p *PilotAgent) URL() string { return p.url }

// Requests returns every completed status-port request, in arrival order.
func (p *PilotAgent) Requests() []Request { return p.rec.list() }

// WaitRequest blocks until a recorded status-port request (past or future)
// matches pred, or ctx ends.
func (p *PilotAgent) WaitRequest(ctx context.Context, pred func(Request) bool) (Request, error) {
	return p.rec.wait(ctx, pred)
}

// Quit is closed once /quitquitquit was handled (its Envoy killed and the
// status port closed) or Close returned.
func (p *PilotAgent) Quit() <-chan struct{} { return p.quit }

// Close stops the status port under a bounded timeout. It leaves the Envoy
// alone and is idempotent.
func (p *PilotAgent) Close() error { return p.stop(closeTimeout) }

func (p *PilotAgent) stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		p.stopErr = shutdownServer(p.srv, p.ln, p.conns.closeIdle, grace, "pilot-agent")
		p.serveWG.Wait()
		p.client.CloseIdleConnections()
		p.quiet.Store(true)
		close(p.quit)
	})
	return p.stopErr
}

// agentReply is a status-port answer.
type agentReply struct {
	status  int
	ctype   string
	body    string
	nosniff bool
	after   func()
}

// httpError is what net/http's http.Error writes.
func httpError(msg string, status int) agentReply {
	return agentReply{status: status, ctype: "text/plain; charset=utf-8", body: msg + "\n", nosniff: true}
}

// agentGate is pilot-agent's check for /quitquitquit and /drain: loopback
// callers only (403), then POST only (405). ok means the call may proceed.
func agentGate(method, remoteAddr string) (rep agentReply, ok bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return httpError(agentForbidden, http.StatusForbidden), false
	}
	if method != http.MethodPost {
		return httpError(agentNotPOST, http.StatusMethodNotAllowed), false
	}
	return agentReply{}, true
}

// ServeHTTP is the status-port handler.
func (p *PilotAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	slot := p.rec.begin(time.Now(), r.Method, r.URL.Path, r.URL.RawQuery)
	rep := p.route(r)
	p.rec.finish(slot, rep.status)
	p.logf("pilot-agent %s %s -> %d", r.Method, r.URL.Path, rep.status)
	h := w.Header()
	h.Set("Vary", "Accept-Encoding") // pilot-agent wraps its mux in a gzip handler
	if rep.ctype != "" {
		h.Set("Content-Type", rep.ctype)
	}
	if rep.nosniff {
		h.Set("X-Content-Type-Options", "nosniff")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
	if rep.after != nil {
		go rep.after()
	}
}

func (p *PilotAgent) route(r *http.Request) agentReply {
	switch r.URL.Path {
	case "/quitquitquit":
		if rep, ok := agentGate(r.Method, r.RemoteAddr); !ok {
			return rep
		}
		return agentReply{status: http.StatusOK, ctype: "text/plain; charset=utf-8", body: agentOK, after: p.exit}
	case "/drain":
		if rep, ok := agentGate(r.Method, r.RemoteAddr); !ok {
			return rep
		}
		p.drainEnvoy(r.Context())
		// 200 even when Envoy could not be reached, as pilot-agent does.
		return agentReply{status: http.StatusOK, ctype: "text/plain; charset=utf-8", body: agentOK}
	case "/healthz/ready":
		if p.isReady(r.Context()) {
			return agentReply{status: http.StatusOK}
		}
		return agentReply{status: http.StatusServiceUnavailable}
	}
	if strings.HasPrefix(r.URL.Path, "/app-health/") || strings.HasPrefix(r.URL.Path, "/app-lifecycle/") {
		// The fake has no app probers (ISTIO_KUBE_APP_PROBERS), so every
		// such path is unknown: 400, written without http.Error (no
		// newline, no nosniff), for any method.
		return agentReply{status: http.StatusBadRequest, ctype: "text/plain; charset=utf-8", body: agentNoProber + r.URL.Path}
	}
	return httpError("404 page not found", http.StatusNotFound)
}

// exit is pilot-agent after /quitquitquit: SIGKILL Envoy, then exit 0.
func (p *PilotAgent) exit() {
	p.logf("pilot-agent killing envoy and exiting after /quitquitquit")
	p.e.Kill()
	_ = p.stop(quitTimeout)
}

func (p *PilotAgent) drainEnvoy(ctx context.Context) {
	status, _, err := p.envoy(ctx, http.MethodPost, istioDrainPath)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		p.logf("pilot-agent failed draining listeners for Envoy: %v", err)
	}
}

func (p *PilotAgent) envoy(ctx context.Context, method, pathQuery string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base+pathQuery, nil)
	if err != nil {
		return 0, "", fmt.Errorf("cannot build envoy request: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("cannot reach envoy: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("cannot read envoy answer: %w", err)
	}
	return resp.StatusCode, string(b), nil
}

// isReady is pilot-agent's readiness: config received (CDS and LDS updates)
// and Envoy LIVE with workers started. The first success is cached for good.
func (p *PilotAgent) isReady(ctx context.Context) bool {
	if p.ready.Load() {
		return true
	}
	if err := p.checkEnvoy(ctx); err != nil {
		p.logf("Envoy proxy is NOT ready: %v", err)
		return false
	}
	p.ready.Store(true)
	return true
}

// checkEnvoy is pilot-agent's two probes (envoy-admin.md §3): config
// received (a successful CDS and LDS update), then Envoy LIVE with workers
// started. The errors are its texts.
func (p *PilotAgent) checkEnvoy(ctx context.Context) error {
	cfg, err := p.stats(ctx, istioConfigStats)
	if err != nil {
		return err
	}
	cdsOK, cdsBad := cfg["cluster_manager.cds.update_success"], cfg["cluster_manager.cds.update_rejected"]
	ldsOK, ldsBad := cfg["listener_manager.lds.update_success"], cfg["listener_manager.lds.update_rejected"]
	if cdsOK == 0 || ldsOK == 0 {
		counts := fmt.Sprintf("cds updates: %d successful, %d rejected; lds updates: %d successful, %d rejected", cdsOK, cdsBad, ldsOK, ldsBad)
		switch {
		case cdsOK+cdsBad+ldsOK+ldsBad == 0:
			return fmt.Errorf("config not received from XDS server (is Istiod running?): %s", counts)
		case cdsBad+ldsBad > 0:
			return fmt.Errorf("config received from XDS server, but was rejected: %s", counts)
		default:
			return fmt.Errorf("config not fully received from XDS server: %s", counts)
		}
	}
	srv, err := p.stats(ctx, istioServerStats)
	if err != nil {
		return err
	}
	st, found := srv["server.state"]
	if !found {
		return fmt.Errorf("server.state is not yet updated: %v", srv)
	}
	workers, found := srv["listener_manager.workers_started"]
	if !found {
		return fmt.Errorf("listener_manager.workers_started is not yet updated: %v", srv)
	}
	if st != stateGauge[StateLive] {
		return fmt.Errorf("server is not live, current state is: %s", stateName(st))
	}
	if workers != 1 {
		return fmt.Errorf("workers have not yet started")
	}
	return nil
}

// stateName is the state whose server.state gauge value is v.
func stateName(v uint64) string {
	for name, g := range stateGauge {
		if g == v {
			return name
		}
	}
	return strconv.FormatUint(v, 10)
}

// stats fetches text stats and parses them as pilot-agent does: split on
// ':' and keep lines with exactly two parts and an integer value.
func (p *PilotAgent) stats(ctx context.Context, pathQuery string) (map[string]uint64, error) {
	status, body, err := p.envoy(ctx, http.MethodGet, pathQuery)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("envoy stats answered status %d", status)
	}
	out := map[string]uint64{}
	for line := range strings.SplitSeq(body, "\n") {
		parts := strings.Split(line, ":")
		if len(parts) != 2 {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(parts[1]), 10, 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(parts[0])] = v
	}
	return out, nil
}
