// Package envoyfake is the project's single fake of Envoy's admin API and of
// Istio pilot-agent's status port, for end-to-end tests, benchmarks and demos.
//
// It is written from ../shared/reference/envoy-admin.md (§1, §2, §3 and §6),
// not from the project's envoy client, and imports none of the project's
// packages, so that a misread wire contract cannot pass on both sides.
//
// The fake owns a real traffic listener, so connection gauges in /stats are
// real counts that fall as clients close, and drains act on real sockets.
package envoyfake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server states, as in Envoy's ServerInfo.State enum (values 0..3).
const (
	StateLive            = "LIVE"
	StateDraining        = "DRAINING"
	StatePreInitializing = "PRE_INITIALIZING"
	StateInitializing    = "INITIALIZING"
)

// Garbage modes for Options.Garbage.
const (
	GarbageHTML      = "html"
	GarbageTruncated = "truncated"
	Garbage503       = "503"
	GarbageNonJSON   = "nonjson"
)

// DefaultVersion is the release claimed when Options.Version is empty.
const DefaultVersion = "0123abcd/1.36.6/Clean/RELEASE/BoringSSL"

// Timeouts of the fake's servers and clients.
const (
	closeTimeout      = 2 * time.Second // bound on Close's graceful phase
	quitTimeout       = time.Second     // bound on finishing in-flight admin answers after /quitquitquit
	readHeaderTimeout = 10 * time.Second
	adminIOTimeout    = 30 * time.Second
	adminIdleTimeout  = time.Minute
)

// ErrNoEnvoy is returned by StartPilotAgent when it is given no Envoy.
var ErrNoEnvoy = errors.New("missing envoy")

// Options configures a fake Envoy. The zero value is a LIVE Envoy with admin
// and traffic listener on 127.0.0.1 ephemeral ports.
type Options struct {
	// AdminAddr is the TCP admin address. Empty means "127.0.0.1:0".
	AdminAddr string
	// AdminSocket, if set, makes the admin listen on this unix socket path
	// instead of AdminAddr (Envoy admin on a unix socket, as Contour runs it).
	AdminSocket string
	// ListenerAddr is the traffic listener address. Empty means "127.0.0.1:0".
	// Its stat name is listener.<ip>_<port>.downstream_cx_active.
	ListenerAddr string

	// LiveAfter delays LIVE: the state is INITIALIZING until start+LiveAfter.
	// Zero means LIVE at once (unless PreInitializing or NeverLive).
	LiveAfter time.Duration
	// PreInitializing makes the first N /server_info requests answer
	// PRE_INITIALIZING (and /ready, /stats agree meanwhile). Zero disables it.
	PreInitializing int
	// NeverLive keeps the state INITIALIZING forever.
	NeverLive bool
	// BlackHole makes the admin accept connections and never answer anything.
	BlackHole bool
	// Garbage selects a broken /server_info answer while the state is not
	// LIVE (DRAINING included): "html", "truncated", "503" or "nonjson".
	// Empty means proper JSON.
	Garbage string
	// FailHealthcheckStatus, if non-zero, makes POST /healthcheck/fail answer
	// this status and do nothing (failure injection). Zero means normal.
	FailHealthcheckStatus int
	// Version is the Envoy release the fake claims, as /server_info prints
	// it ("<sha>/1.11.0/Clean/RELEASE/BoringSSL") or bare ("1.11.0"). Empty
	// means DefaultVersion. Every behaviour that changed across releases
	// (405 or 400 on a GET to a mutating endpoint, /ready, /drain_listeners,
	// graceful, skip_exit...) follows it, from the one table in releases.go;
	// a version not in that table is refused.
	Version string

	// Upstream, if set ("127.0.0.1:port"), makes the traffic listener a real
	// HTTP reverse proxy to it. Empty means requests get Envoy's no-route 404.
	Upstream string
	// HealthPath, if set, is answered by the listener itself (Envoy's
	// health-check filter): 200 normally, 503 after /healthcheck/fail.
	HealthPath string

	// Logf, if set, receives one line per admin request and notable events.
	Logf func(format string, args ...any)
}

// Request is one request seen by the admin (or pilot-agent) server.
type Request struct {
	At       time.Time // arrival
	Method   string
	Path     string // normalised path the handler was chosen by (merged slashes, dot segments removed)
	RawQuery string // the URL's query string as sent
	Status   int    // status of the answer
}

// Envoy is a running fake Envoy: an admin server and a traffic listener.
type Envoy struct {
	opts     Options
	logf     func(format string, args ...any)
	start    time.Time
	version  string
	rel      release
	eps      map[string]endpoint // the admin handlers this release has
	adminURL string
	help     string

	admin      *http.Server // nil in black-hole mode
	adminLn    *onceCloseListener
	adminConns connStates
	hole       *blackHole
	adminCx    gauge
	quiet      atomic.Bool // set once stopped: late goroutines must not log (t.Logf panics after a test)
	traffic    *traffic
	rec        *recorder
	serveWG    sync.WaitGroup
	hcFailed   atomic.Bool
	up         upstreams // clusters.go

	mu          sync.Mutex
	serverInfoN int       // /server_info requests so far
	liveAt      time.Time // scheduled LIVE instant; zero while unknown (pre-init) or never

	stopOnce sync.Once
	stopErr  error
	quit     chan struct{}
}

// Start listens on the admin and traffic addresses, then serves them in the
// background. A busy address fails here, synchronously.
func Start(o Options) (*Envoy, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	version := o.Version
	switch {
	case version == "":
		version = DefaultVersion
	case !strings.Contains(version, "/"):
		version = versionString(version)
	}
	rel, err := parseRelease(version)
	if err != nil {
		return nil, err
	}
	e := &Envoy{
		opts:    o,
		start:   time.Now(),
		version: version,
		rel:     rel,
		eps:     endpoints(rel),
		rec:     newRecorder(),
		quit:    make(chan struct{}),
	}
	e.logf = quietable(o.Logf, &e.quiet)
	if o.PreInitializing == 0 && !o.NeverLive {
		e.liveAt = e.start.Add(o.LiveAfter)
	}
	e.help = helpText(e.eps)

	adminLn, err := e.listenAdmin()
	if err != nil {
		return nil, err
	}
	e.adminLn = &onceCloseListener{Listener: adminLn}

	t, err := newTraffic(o, e.hcFailed.Load, e.logf)
	if err != nil {
		_ = adminLn.Close()
		return nil, err
	}
	e.traffic = t

	if o.BlackHole {
		e.hole = newBlackHole(e.adminLn)
		e.serveWG.Go(e.hole.serve)
	} else {
		e.admin = &http.Server{
			Handler:           e,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       adminIOTimeout,
			WriteTimeout:      adminIOTimeout,
			IdleTimeout:       adminIdleTimeout,
			ConnState:         e.adminConnState,
			ErrorLog:          log.New(logWriter(e.logf), "envoyfake admin: ", 0),
		}
		e.serveWG.Go(func() { _ = e.admin.Serve(e.adminLn) })
	}
	e.serveWG.Go(t.serve)
	e.logf("envoyfake started admin=%s listener=%s", e.adminURL, t.addr)
	return e, nil
}

func (o Options) validate() error {
	switch o.Garbage {
	case "", GarbageHTML, GarbageTruncated, Garbage503, GarbageNonJSON:
	default:
		return fmt.Errorf("invalid Garbage %q - valid values are %q", o.Garbage,
			[]string{"", GarbageHTML, GarbageTruncated, Garbage503, GarbageNonJSON})
	}
	if o.LiveAfter < 0 {
		return fmt.Errorf("invalid LiveAfter: must not be negative (got %v)", o.LiveAfter)
	}
	if o.PreInitializing < 0 {
		return fmt.Errorf("invalid PreInitializing: must not be negative (got %d)", o.PreInitializing)
	}
	if o.FailHealthcheckStatus != 0 && (o.FailHealthcheckStatus < 100 || o.FailHealthcheckStatus > 999) {
		return fmt.Errorf("invalid FailHealthcheckStatus: not an HTTP status (got %d)", o.FailHealthcheckStatus)
	}
	if o.Upstream != "" {
		if _, _, err := net.SplitHostPort(o.Upstream); err != nil {
			return fmt.Errorf("invalid Upstream %q: want host:port: %w", o.Upstream, err)
		}
	}
	if o.HealthPath != "" && !strings.HasPrefix(o.HealthPath, "/") {
		return fmt.Errorf("invalid HealthPath %q: must start with /", o.HealthPath)
	}
	return nil
}

func (e *Envoy) listenAdmin() (net.Listener, error) {
	if e.opts.AdminSocket != "" {
		p, err := filepath.Abs(e.opts.AdminSocket)
		if err != nil {
			return nil, fmt.Errorf("cannot resolve admin socket path: %w", err)
		}
		ln, err := net.Listen("unix", p)
		if err != nil {
			return nil, fmt.Errorf("cannot listen on admin socket: %w", err)
		}
		e.adminURL = "unix://" + p
		return ln, nil
	}
	addr := e.opts.AdminAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on admin address: %w", err)
	}
	e.adminURL = "http://" + ln.Addr().String()
	return ln, nil
}

func (e *Envoy) adminConnState(c net.Conn, s http.ConnState) {
	e.adminConns.track(c, s)
	switch s {
	case http.StateNew:
		e.adminCx.inc()
	case http.StateClosed, http.StateHijacked:
		e.adminCx.dec()
	}
}

// AdminURL is the admin base URL: "http://127.0.0.1:PORT" or "unix:///path.sock".
func (e *Envoy) AdminURL() string { return e.adminURL }

// ListenerAddr is the host:port of the traffic listener.
func (e *Envoy) ListenerAddr() string { return e.traffic.addr }

// LiveAt is the instant the state became, or is scheduled to become, LIVE.
// It is zero with NeverLive, and while PRE_INITIALIZING answers remain (the
// instant then depends on when the next /server_info request arrives).
func (e *Envoy) LiveAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.liveAt
}

// State is the server state now: LIVE, DRAINING, PRE_INITIALIZING or INITIALIZING.
func (e *Envoy) State() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stateLocked(time.Now())
}

// stateLocked mirrors Envoy's serverState: init not started, initializing,
// then DRAINING if health checks were failed, else LIVE.
func (e *Envoy) stateLocked(now time.Time) string {
	switch {
	case e.opts.PreInitializing > 0 && e.serverInfoN <= e.opts.PreInitializing:
		// The last scripted PRE_INITIALIZING answer holds until the next /server_info.
		return StatePreInitializing
	case e.liveAt.IsZero() || now.Before(e.liveAt):
		return StateInitializing
	case e.hcFailed.Load():
		return StateDraining
	default:
		return StateLive
	}
}

// initializedLocked reports whether the init manager finished (LIVE or DRAINING).
func (e *Envoy) initializedLocked(now time.Time) bool {
	st := e.stateLocked(now)
	return st == StateLive || st == StateDraining
}

// serverInfoState counts one /server_info request and returns the state it sees.
func (e *Envoy) serverInfoState(now time.Time) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.serverInfoN++
	if e.serverInfoN <= e.opts.PreInitializing {
		return StatePreInitializing
	}
	if e.serverInfoN == e.opts.PreInitializing+1 && e.opts.PreInitializing > 0 && !e.opts.NeverLive {
		// The pre-init script just ended: LIVE now, or at the LiveAfter instant if later.
		e.liveAt = e.start.Add(e.opts.LiveAfter)
		if now.After(e.liveAt) {
			e.liveAt = now
		}
	}
	return e.stateLocked(now)
}

// Requests returns every completed admin request, in arrival order (none in
// BlackHole mode: nothing is ever read).
func (e *Envoy) Requests() []Request { return e.rec.list() }

// WaitRequest blocks until a recorded admin request (past or future) matches
// pred, or ctx ends. It wakes on each new request; it does not poll.
func (e *Envoy) WaitRequest(ctx context.Context, pred func(Request) bool) (Request, error) {
	return e.rec.wait(ctx, pred)
}

// Quit is closed once /quitquitquit was handled, Kill was called or Close
// returned. By then the admin and traffic listeners are closed.
func (e *Envoy) Quit() <-chan struct{} { return e.quit }

// Kill stops the fake abruptly, as SIGKILL would: every listener and
// connection is closed at once. It is idempotent.
func (e *Envoy) Kill() { _ = e.stop(0, 0, "killed") }

// ActiveConnections is the number of open connections on the traffic listener.
func (e *Envoy) ActiveConnections() int { return int(e.traffic.cx.get()) }

// Close shuts the fake down, letting in-flight requests finish for at most a
// few seconds before closing every connection. It is idempotent and safe
// after Quit or Kill.
func (e *Envoy) Close() error { return e.stop(closeTimeout, closeTimeout, "closed") }

// exit is what Envoy does after answering /quitquitquit: the admin finishes
// the answers it is writing; the traffic listener and its connections go at
// once (no drain).
func (e *Envoy) exit() { _ = e.stop(quitTimeout, 0, "exited after /quitquitquit") }

// stop closes everything once. The graces bound how long in-flight requests
// may finish; zero closes every connection at once.
func (e *Envoy) stop(adminGrace, trafficGrace time.Duration, why string) error {
	e.stopOnce.Do(func() {
		var wg sync.WaitGroup
		var adminErr, trafficErr error
		wg.Go(func() { adminErr = e.stopAdmin(adminGrace) })
		wg.Go(func() { trafficErr = e.traffic.stop(trafficGrace) })
		wg.Wait()
		e.serveWG.Wait()
		e.stopErr = errors.Join(adminErr, trafficErr)
		e.logf("envoyfake %s", why)
		e.quiet.Store(true)
		close(e.quit)
	})
	return e.stopErr
}

func (e *Envoy) stopAdmin(grace time.Duration) error {
	if e.hole != nil {
		e.hole.close()
		return nil
	}
	return shutdownServer(e.admin, e.adminLn, e.adminConns.closeIdle, grace, "admin")
}

// gauge is a live count that remembers whether it was ever written
// (Envoy's "used" flag, which /stats?usedonly relies on).
type gauge struct {
	n     atomic.Int64
	total atomic.Uint64
	used  atomic.Bool
}

func (g *gauge) inc() {
	g.used.Store(true)
	g.total.Add(1)
	g.n.Add(1)
}

func (g *gauge) dec()          { g.n.Add(-1) }
func (g *gauge) get() uint64   { return uint64(max(g.n.Load(), 0)) }
func (g *gauge) wasUsed() bool { return g.used.Load() }

// quietable wraps an optional Logf so it can be silenced once stopped.
func quietable(logf func(string, ...any), quiet *atomic.Bool) func(string, ...any) {
	return func(format string, args ...any) {
		if logf != nil && !quiet.Load() {
			logf(format, args...)
		}
	}
}

// logWriter adapts Logf to the io.Writer that http.Server.ErrorLog needs.
type logWriter func(format string, args ...any)

func (f logWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = logWriter(nil)
