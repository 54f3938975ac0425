// Package shutdownmgr is the shutdown manager's HTTP server: a sidecar that
// drains Envoy from Kubernetes preStop hooks and answers a load balancer's
// health checks. It serves, on one port, what three tools served:
//
//   - the Envoy shutdown handler's /shutdown and /waitforshutdown, with
//     ?delay=&period=&deadline= and 408 at the deadline;
//   - marin3r's and Contour's /shutdown, /drain and ready file;
//   - k8s-prestop-sidecar's /healthz, /readyz, /waitz and catch-all
//     load-balancer path.
//
// Every drain is quit.Drain, the engine the wrap mode uses, and there is at
// most one per process: every caller joins it. See README.md.
package shutdownmgr

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/quit"
)

// Defaults for the zero values of Server's fields.
const (
	DefaultPort              = 8090
	DefaultMaxWaiters        = 128
	DefaultReadyFileInterval = time.Second
	DefaultShutdownTimeout   = 5 * time.Second
	// DefaultMaxConns is the default cap on open connections: room for
	// DefaultMaxWaiters waiting hooks plus probes, at a few MB at most.
	DefaultMaxConns = 256
)

// TokenHeader carries the shared token when Server.Token is set; kubelet's
// httpGet hooks send it with httpHeaders.
const TokenHeader = "X-Shutdown-Token"

// Server timeouts. There is no WriteTimeout: a long poll legitimately
// answers minutes after its request, and the answers are one line.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 15 * time.Second // an idle keep-alive holds one of MaxConns
	maxHeaderBytes    = 8 << 10
	// refusalLogInterval is the least time between two log lines of one
	// kind of refusal (connection shed, waiter limit, missing token...).
	refusalLogInterval = 10 * time.Second
	// freeMemoryAt is the connection count that makes the manager hand
	// memory back to the OS once the count drops to zero again.
	freeMemoryAt = 64
)

var (
	// ErrMissingAdmin means Server.Drain.Admin is nil.
	ErrMissingAdmin = errors.New("missing envoy admin client")
	// ErrMissingReadyFile means ReadyFileOnly is set without a ReadyFile.
	ErrMissingReadyFile = errors.New("ready-file-only needs a ready file")
	// ErrAlreadyOpen means Open was called twice.
	ErrAlreadyOpen = errors.New("server already open")
	// ErrBadSetting means a field is out of range (the error says which).
	ErrBadSetting = errors.New("bad setting")
)

// Server is the shutdown manager. Set its fields, then call Open; they must
// not change afterwards. The zero value of each field is documented on it.
type Server struct {
	// Addr is the host:port to listen on. Empty means ":8090" (all
	// interfaces: kubelet's httpGet hooks reach the pod IP). Port 0 picks
	// a free port; see Port.
	Addr string

	// Drain is the drain every /shutdown and /drain starts or joins. Its
	// Delay, Period and Deadline are the defaults of the ?delay=, ?period=
	// and ?deadline= parameters; Period must be > 0. Admin is required.
	Drain quit.Drain

	// ReadyFile is written when a drain finishes (unless it was cancelled)
	// and waited for by /shutdown/ready. Empty means none.
	ReadyFile string
	// ReadyFileOnly makes /shutdown and /waitforshutdown wait for
	// ReadyFile instead of draining: the drain runs in another process
	// (`envoy-lifecycle drain` as an exec hook). /drain still drains.
	ReadyFileOnly bool
	// ReadyFileInterval is how often a missing ready file is checked for.
	// Zero means DefaultReadyFileInterval.
	ReadyFileInterval time.Duration
	// StateFile records that a drain failed Envoy's health checks; Open
	// undoes what it finds there (POST /healthcheck/ok), since a manager
	// that starts is never in a terminating pod. Empty means none.
	StateFile string

	// Token, if set, must come in the TokenHeader of /shutdown, /drain,
	// /waitforshutdown, /shutdown/ready and /waitz: 401 without it, 403
	// when wrong. Probes (/healthz, /readyz, the catch-all) never need it.
	// Empty means none, and then only loopback clients may start or join a
	// drain (see AllowRemoteDrain).
	Token string
	// AllowRemoteDrain lets clients outside loopback start or join a drain
	// (/drain, and /shutdown unless ReadyFileOnly) when Token is empty.
	// False by default: any pod that reaches the port could otherwise drain
	// Envoy's listeners, which can't be undone. kubelet's httpGet hooks come
	// from the node, so they need Token (or this).
	AllowRemoteDrain bool
	// MaxWaiters bounds the requests that wait at once (the five above);
	// past it they get 503. Zero means DefaultMaxWaiters.
	MaxWaiters int
	// MaxConns bounds the connections open at once; past it new ones are
	// closed as soon as accepted. Zero means DefaultMaxConns, raised to
	// MaxWaiters+64 when that is larger.
	MaxConns int

	// Interval is how long no load-balancer hit must be seen before /waitz
	// (and the exit after Terminate) proceed. Zero means at once.
	Interval time.Duration
	// Cooldown is waited after Interval, before /waitz returns. Zero means
	// none.
	Cooldown time.Duration
	// WaitzTimeout bounds /waitz (408 past it). Zero means no bound but
	// the client's.
	WaitzTimeout time.Duration
	// LogHits logs every load-balancer hit at info (k8s-prestop-sidecar's
	// LOG); otherwise at trace.
	LogHits bool

	// DrainOnTerminate makes Terminate start (or join) the drain too.
	// Off by default: Kubernetes also stops a container it restarts alone,
	// and a graceful /drain_listeners can't be undone.
	DrainOnTerminate bool

	// ShutdownTimeout bounds how long Close lets answers in flight finish.
	// Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Logger receives the server's logs. Nil means none.
	Logger hclog.Logger

	initOnce  sync.Once
	mux       *http.ServeMux
	log       hclog.Logger
	ctx       context.Context // the server's life: drains and the restore run on it
	cancel    context.CancelFunc
	closing   chan struct{} // closed by Close: waiting requests answer 503
	closeOnce sync.Once
	closeErr  error
	waiters   chan struct{} // one token per waiting request
	tokenHash [32]byte
	refusals  logLimiter
	lastFree  atomic.Int64 // UnixNano of the last FreeOSMemory
	openedAt  time.Time
	wg        sync.WaitGroup // drain and restore goroutines

	srv      *http.Server
	ln       net.Listener
	serveErr chan error

	restoreCancel context.CancelFunc
	restoreDone   chan struct{}

	terminating atomic.Bool
	hits        atomic.Uint64
	lastHit     atomic.Int64 // UnixNano of the last load-balancer hit

	mu           sync.Mutex
	waitz        int           // /waitz requests in flight
	waitzLeft    chan struct{} // closed and replaced when one ends
	opened       bool
	closed       bool
	drain        *drainRun
	drainStarted chan struct{} // closed when the drain starts
	readyWritten chan struct{} // closed when this process wrote the ready file
}

// drainRun is the one drain: res and err are set before done is closed.
type drainRun struct {
	params  Params
	by      string
	started time.Time
	done    chan struct{}
	res     quit.Result
	err     error // the ready file could not be written
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.log = s.Logger
		if s.log == nil {
			s.log = hclog.NewNullLogger()
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.closing = make(chan struct{})
		s.drainStarted = make(chan struct{})
		s.readyWritten = make(chan struct{})
		s.waitzLeft = make(chan struct{})
		s.serveErr = make(chan error, 1)
		n := s.MaxWaiters
		if n <= 0 {
			n = DefaultMaxWaiters
		}
		s.waiters = make(chan struct{}, n)
		s.tokenHash = sha256.Sum256([]byte(s.Token))
		s.refusals.interval = refusalLogInterval
		s.openedAt = time.Now()
		s.lastHit.Store(s.openedAt.UnixNano())
		s.routes()
	})
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/shutdown", s.handleShutdown)
	m.HandleFunc("/drain", s.handleDrain)
	m.HandleFunc("/waitforshutdown", s.handleWaitForShutdown)
	m.HandleFunc("/shutdown/ready", s.handleReadyFile)
	m.HandleFunc("/healthz", s.handleHealthz)
	m.HandleFunc("/health/alive", s.handleHealthz)
	m.HandleFunc("/readyz", s.handleReadyz)
	m.HandleFunc("/health/ready", s.handleReadyz)
	m.HandleFunc("/waitz", s.handleWaitz)
	m.HandleFunc("/status", s.handleStatus)
	m.HandleFunc("/", s.handleProbe)
	s.mux = m
}

// check validates the fields.
func (s *Server) check() error {
	switch {
	case s.Drain.Admin == nil:
		return ErrMissingAdmin
	case s.ReadyFileOnly && s.ReadyFile == "":
		return ErrMissingReadyFile
	case s.Drain.Period <= 0:
		return fmt.Errorf("%w: Drain.Period must be > 0 (got %s)", ErrBadSetting, s.Drain.Period)
	case s.Drain.Delay < 0 || s.Drain.Deadline < 0 || s.Drain.StartDelay < 0:
		return fmt.Errorf("%w: Drain delays and deadline must not be negative", ErrBadSetting)
	case s.Drain.Period < MinPeriod:
		return fmt.Errorf("%w: Drain.Period must be at least %s (got %s)", ErrBadSetting, MinPeriod, s.Drain.Period)
	case s.Interval < 0 || s.Cooldown < 0 || s.WaitzTimeout < 0 || s.ReadyFileInterval < 0 || s.ShutdownTimeout < 0:
		return fmt.Errorf("%w: durations must not be negative", ErrBadSetting)
	case s.MaxConns < 0:
		return fmt.Errorf("%w: MaxConns must not be negative (got %d)", ErrBadSetting, s.MaxConns)
	}
	return nil
}

// Open checks the fields, removes a stale ready file, listens, starts
// undoing what the state file records, and serves in the background. A
// busy address fails here, synchronously.
func (s *Server) Open() error {
	s.init()
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened || s.closed {
		return ErrAlreadyOpen
	}
	addr := s.Addr
	if addr == "" {
		addr = ":" + strconv.Itoa(DefaultPort)
	}
	// Listen, then Serve: a busy port is an error from Open, not a log line
	// from a goroutine.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen: %w", err)
	}
	maxConns := s.MaxConns
	if maxConns == 0 {
		maxConns = max(DefaultMaxConns, cap(s.waiters)+64)
	}
	ln = &limitListener{Listener: ln, max: int64(maxConns), busyAt: freeMemoryAt,
		shed: func() {
			s.refusals.log(s.log, hclog.Warn, "connection limit reached; closing new connections", "max_conns", maxConns)
		},
		idle: s.freeMemory,
	}
	s.ln, s.opened = ln, true
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	// Before serving, so no waiter sees a file from an earlier life.
	removeStale(s.ReadyFile, "ready file", s.log)
	if s.StateFile != "" {
		ctx, cancel := context.WithCancel(s.ctx)
		s.restoreCancel, s.restoreDone = cancel, make(chan struct{})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer close(s.restoreDone)
			restore(ctx, s.StateFile, s.Drain.Admin, s.log.With("context", "restore"))
		}()
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "error", err)
			s.serveErr <- err
		}
	}()
	s.log.Info("listening", "address", ln.Addr().String(), "admin", s.Drain.Admin.Base().String(),
		"ready_file", s.ReadyFile, "ready_file_only", s.ReadyFileOnly, "state_file", s.StateFile,
		"token", s.Token != "", "remote_drain", s.Token != "" || s.AllowRemoteDrain,
		"max_waiters", cap(s.waiters), "max_conns", maxConns)
	if s.Token == "" && !s.AllowRemoteDrain {
		s.log.Info("no token: only loopback clients may start a drain; kubelet httpGet hooks need a token")
	}
	return nil
}

// freeMemory hands memory back to the OS after a busy spell: an idle
// process allocates nothing, so without this the GC would never run and the
// spell's memory would stay resident. At most once per refusalLogInterval.
func (s *Server) freeMemory() {
	now := time.Now().UnixNano()
	last := s.lastFree.Load()
	if now-last < int64(refusalLogInterval) || !s.lastFree.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

// Port is the port the server listens on, or 0 before Open.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return 0
	}
	if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// ServeErr receives the error that stopped the server, if Serve fails
// before Close.
func (s *Server) ServeErr() <-chan error {
	s.init()
	return s.serveErr
}

// ServeHTTP serves the manager's endpoints; Open uses it, tests may call it
// directly.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	// ServeMux would redirect "//drain" or "/drain/." to /drain: a control
	// path must be exact, so those are typos too.
	if p := r.URL.Path; p != "" && path.Clean(p) != p && mistypedControl(p) != "" {
		s.handleProbe(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Close stops the server: waiting requests answer 503 (a ready-file wait
// looks for the file once more first, and answers 200 when it is there), a
// running drain is cancelled (its ready file is not written), and answers in
// flight get up to ShutdownTimeout to finish. It is idempotent.
func (s *Server) Close() error {
	s.init()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv := s.srv
		s.mu.Unlock()
		close(s.closing)
		s.cancel()
		if srv != nil {
			timeout := s.ShutdownTimeout
			if timeout <= 0 {
				timeout = DefaultShutdownTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			if err := srv.Shutdown(ctx); err != nil {
				s.closeErr = errors.Join(fmt.Errorf("cannot finish answers in time: %w", err), srv.Close())
			}
			cancel()
		}
		s.wg.Wait()
		s.log.Info("server closed")
	})
	return s.closeErr
}

// Terminate starts the termination: from now on /readyz and the
// load-balancer path answer 503. With DrainOnTerminate it also starts (or
// joins) the drain with the default parameters. It is idempotent.
func (s *Server) Terminate(why string) {
	s.init()
	s.mu.Lock()
	s.terminateLocked(why)
	s.mu.Unlock()
	if s.DrainOnTerminate {
		_, _, _ = s.startOrJoin(s.defaultParams(), why) // a failure is logged
	}
}

func (s *Server) terminateLocked(why string) {
	if !s.terminating.Swap(true) {
		s.log.Info("termination started; readiness now fails", "by", why, "lb_hits", s.hits.Load())
	}
}

// WaitIdle blocks, after Terminate, until the manager has nothing left to
// do: no drain is running and, if a load-balancer hit was ever seen, none
// was seen for Interval, followed by Cooldown (the /waitz condition). It
// returns ctx's error if ctx ends first.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.init()
	for {
		s.mu.Lock()
		run := s.drain
		s.mu.Unlock()
		if run != nil {
			select {
			case <-run.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if s.hits.Load() > 0 {
			if err := s.waitQuiet(ctx, nil, nil); err != nil {
				return err
			}
			s.log.Info("load balancer quiet; cooling down", "interval", s.Interval, "cooldown", s.Cooldown)
			if err := sleepCtx(ctx, nil, nil, s.Cooldown); err != nil {
				return err
			}
		}
		// A /waitz that saw the quiet later than this is still cooling
		// down: let it have its answer before Close.
		for {
			s.mu.Lock()
			n, left, again := s.waitz, s.waitzLeft, s.drain != run
			s.mu.Unlock()
			if again {
				break
			}
			if n == 0 {
				return nil
			}
			select {
			case <-left:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// errClosing ends a wait because the server is closing.
var errClosing = errors.New("manager exiting")

// errLimit ends a wait at its own deadline.
var errLimit = errors.New("deadline")

// sleepCtx waits d, or until ctx ends, limit fires or closing closes (nil
// channels never do).
func sleepCtx(ctx context.Context, limit <-chan time.Time, closing <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-limit:
		return errLimit
	case <-closing:
		return errClosing
	}
}

func (s *Server) defaultParams() Params {
	return Params{Delay: s.Drain.Delay, Auto: s.Drain.Quiet != nil, Period: s.Drain.Period, Deadline: s.Drain.Deadline}
}

// startOrJoin starts the drain with p, or joins the one already started.
// started reports whether this call started it. run is nil, with the
// reason, when the server is closing or has no admin client.
func (s *Server) startOrJoin(p Params, by string) (run *drainRun, started bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, errClosing
	}
	s.terminateLocked(by)
	if s.Drain.Admin == nil {
		s.log.Error("cannot drain", "context", by, "error", ErrMissingAdmin)
		return nil, false, ErrMissingAdmin
	}
	if s.drain != nil {
		s.log.Info("joining the drain in progress", "context", by, "started_by", s.drain.by, "running_for", time.Since(s.drain.started))
		return s.drain, false, nil
	}
	run = &drainRun{params: p, by: by, started: time.Now(), done: make(chan struct{})}
	s.drain = run
	close(s.drainStarted)
	d := s.Drain
	d.Delay, d.Period, d.Deadline = p.Delay, p.Period, p.Deadline
	d.Quiet = autoDelay(p.Auto, d.Quiet)
	s.log.Info("drain starting", "context", by, "start_delay", d.StartDelay, "delay", d.Delay, "auto_delay", p.Auto,
		"period", d.Period, "deadline", d.Deadline, "min_connections", d.MinConnections,
		"drain_listeners", !d.SkipDrainListeners)
	s.wg.Add(1)
	go s.runDrain(run, d)
	return run, true, nil
}

// runDrain runs on the server's context, never a request's: a caller that
// leaves does not cancel it, and a slow one does not hold it.
func (s *Server) runDrain(run *drainRun, d quit.Drain) {
	defer s.wg.Done()
	// The undo of an earlier drain must not land after this drain's
	// /healthcheck/fail.
	if s.restoreCancel != nil {
		s.restoreCancel()
		<-s.restoreDone
	}
	run.res, run.err = runDrain(s.ctx, d, s.ReadyFile, s.StateFile, s.log)
	if run.res.Reason != quit.ReasonCancelled && run.err == nil {
		close(s.readyWritten)
	}
	close(run.done)
}

// currentDrain returns the drain once started, or nil.
func (s *Server) currentDrain() *drainRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drain
}

// admit checks what every waiting request needs: the method, the token and
// a free waiter slot. On false it has answered.
// drains is true for requests that start or join a drain.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, log hclog.Logger, drains bool) (release func(), ok bool) {
	// HEAD is what a curious probe sends: it must never act.
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		s.refuse(w, log, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed (valid: GET, POST)")
		return nil, false
	}
	if !s.authorized(w, r, log, drains) {
		return nil, false
	}
	select {
	case s.waiters <- struct{}{}:
		return func() { <-s.waiters }, true
	default:
		s.refuse(w, log, http.StatusServiceUnavailable, fmt.Sprintf("too many waiting requests (max %d)", cap(s.waiters)))
		return nil, false
	}
}

// authorized checks the token, and without one, that a drain comes from
// loopback. On false it has answered 401 or 403. Answers and logs never
// hold the token that was sent.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, log hclog.Logger, drains bool) bool {
	if s.Token == "" {
		if drains && !s.AllowRemoteDrain && !isLoopback(r) {
			s.refuse(w, log, http.StatusForbidden, "a drain from outside the pod needs a token: set SHUTDOWN_MANAGER_TOKEN and send it in "+TokenHeader)
			return false
		}
		return true
	}
	got, ok := r.Header[http.CanonicalHeaderKey(TokenHeader)]
	if !ok || len(got) == 0 {
		w.Header().Set("WWW-Authenticate", `Token header="`+TokenHeader+`"`)
		s.refuse(w, log, http.StatusUnauthorized, "missing "+TokenHeader+" header")
		return false
	}
	if len(got) != 1 || !tokenMatches(got[0], s.tokenHash) {
		s.refuse(w, log, http.StatusForbidden, "wrong "+TokenHeader)
		return false
	}
	return true
}

// refuse answers like reply, but its log line goes through the refusal
// limiter: a flood of refused requests costs a line per interval.
func (s *Server) refuse(w http.ResponseWriter, log hclog.Logger, status int, msg string) {
	writeLine(w, status, msg)
	s.refusals.log(log, hclog.Warn, "refused", "status", status, "answer", msg)
}

// params reads the query over the defaults; on false it has answered 400.
// drain is true for the requests that start or join a drain: only their
// deadline must cover start-drain-delay+delay+period.
func (s *Server) params(w http.ResponseWriter, r *http.Request, log hclog.Logger, drain bool) (Params, bool) {
	var p Params
	var err error
	if drain {
		p, err = ParseParams(r.URL.Query(), s.defaultParams(), s.Drain.StartDelay)
	} else {
		p, err = parseWaitParams(r.URL.Query(), s.defaultParams())
	}
	if err != nil {
		s.reply(w, log, http.StatusBadRequest, err.Error())
		return Params{}, false
	}
	return p, true
}

// reply writes a one-line text answer and logs it.
func (s *Server) reply(w http.ResponseWriter, log hclog.Logger, status int, msg string) {
	writeLine(w, status, msg)
	switch {
	case status >= 500 || status == http.StatusRequestTimeout:
		log.Warn("answered", "status", status, "answer", msg)
	case status >= 400:
		log.Info("refused", "status", status, "answer", msg)
	default:
		log.Info("answered", "status", status, "answer", msg)
	}
}

// requestLog is the logger of one waiting request.
func (s *Server) requestLog(name string, r *http.Request) hclog.Logger {
	return s.log.With("context", name, "remote", r.RemoteAddr)
}

// handleShutdown is /shutdown: start or join the drain and wait for it
// (the shutdown handler), or, with ReadyFileOnly, wait for the ready file
// (Contour, marin3r with an exec hook).
func (s *Server) handleShutdown(w http.ResponseWriter, r *http.Request) {
	if s.ReadyFileOnly {
		s.serveReadyFile(w, r, "shutdown", true)
		return
	}
	s.serveDrain(w, r, "shutdown")
}

// handleDrain is marin3r's /drain: start or join the drain and wait for it.
func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	s.serveDrain(w, r, "drain")
}

// handleWaitForShutdown starts nothing: it waits until a drain has started
// and finished (or, with ReadyFileOnly, for the ready file).
func (s *Server) handleWaitForShutdown(w http.ResponseWriter, r *http.Request) {
	if s.ReadyFileOnly {
		s.serveReadyFile(w, r, "waitforshutdown", false)
		return
	}
	log := s.requestLog("waitforshutdown", r)
	release, ok := s.admit(w, r, log, false)
	if !ok {
		return
	}
	defer release()
	p, ok := s.params(w, r, log, false)
	if !ok {
		return
	}
	arrived := time.Now()
	limit, stop := deadlineTimer(p.Deadline)
	defer stop()
	log.Info("waiting for a drain to start and finish", "deadline", p.Deadline)
	select {
	case <-s.drainStarted:
	case <-limit:
		s.reply(w, log, http.StatusRequestTimeout, fmt.Sprintf("deadline: no drain started within %s", p.Deadline))
		return
	case <-r.Context().Done():
		log.Info("caller left", "waited", time.Since(arrived))
		return
	case <-s.closing:
		s.reply(w, log, http.StatusServiceUnavailable, "manager exiting")
		return
	}
	s.waitRun(w, r, log, s.currentDrain(), limit, p.Deadline, arrived)
}

// serveDrain starts or joins the drain and answers its outcome.
func (s *Server) serveDrain(w http.ResponseWriter, r *http.Request, name string) {
	log := s.requestLog(name, r)
	release, ok := s.admit(w, r, log, true)
	if !ok {
		return
	}
	defer release()
	p, ok := s.params(w, r, log, true)
	if !ok {
		return
	}
	arrived := time.Now()
	run, started, err := s.startOrJoin(p, name)
	if err != nil {
		s.reply(w, log, http.StatusServiceUnavailable, "cannot drain: "+err.Error())
		return
	}
	// The drain that this request started is bounded by the same deadline;
	// waiting for its outcome gives the connection count in the answer.
	// A caller that joined waits at most its own deadline.
	var limit <-chan time.Time
	if !started {
		var stop func()
		limit, stop = deadlineTimer(p.Deadline)
		defer stop()
	}
	s.waitRun(w, r, log, run, limit, p.Deadline, arrived)
}

// waitRun waits for run to finish, the caller's limit, the caller leaving or
// the server closing, and answers.
func (s *Server) waitRun(w http.ResponseWriter, r *http.Request, log hclog.Logger, run *drainRun, limit <-chan time.Time, deadline time.Duration, arrived time.Time) {
	select {
	case <-run.done:
		if run.err != nil {
			s.reply(w, log, http.StatusInternalServerError, fmt.Sprintf("drain ended (%s) but %v", run.res.Reason, run.err))
			return
		}
		s.answerResult(w, log, run.res)
	case <-limit:
		s.reply(w, log, http.StatusRequestTimeout, fmt.Sprintf("deadline: drain still running after %s", deadline))
	case <-r.Context().Done():
		// The drain goes on: it runs on the server's context.
		log.Info("caller left; the drain goes on", "waited", time.Since(arrived))
	case <-s.closing:
		s.reply(w, log, http.StatusServiceUnavailable, "manager exiting")
	}
}

// answerResult maps a drain's outcome to the shutdown handler's statuses:
// 200 when done, 408 at the deadline.
func (s *Server) answerResult(w http.ResponseWriter, log hclog.Logger, res quit.Result) {
	took := res.Took.Round(time.Millisecond)
	switch res.Reason {
	case quit.ReasonDrained:
		s.reply(w, log, http.StatusOK, fmt.Sprintf("drained: %d open connections (min %d) after %s", res.Remaining, s.Drain.MinConnections, took))
	case quit.ReasonStatMissing:
		s.reply(w, log, http.StatusOK, fmt.Sprintf("drained without waiting: no connection stat matched, after %s", took))
	case quit.ReasonDeadline:
		s.reply(w, log, http.StatusRequestTimeout, fmt.Sprintf("deadline: %d connections still open after %s", res.Remaining, took))
	case quit.ReasonUnreachable:
		s.reply(w, log, http.StatusBadGateway, fmt.Sprintf("envoy admin unreachable after %s (%d connections at the last poll)", took, res.Remaining))
	case quit.ReasonStatsTooLarge:
		s.reply(w, log, http.StatusBadGateway, fmt.Sprintf("envoy's /stats answer too large to count connections, after %s", took))
	default:
		s.reply(w, log, http.StatusServiceUnavailable, "drain "+string(res.Reason)+": manager exiting")
	}
}

// serveReadyFile waits until the ready file exists: Contour's and marin3r's
// /shutdown, Envoy Gateway's /shutdown/ready. terminate marks the
// termination as started (Envoy's preStop calls these).
func (s *Server) serveReadyFile(w http.ResponseWriter, r *http.Request, name string, terminate bool) {
	log := s.requestLog(name, r)
	release, ok := s.admit(w, r, log, false)
	if !ok {
		return
	}
	defer release()
	if s.ReadyFile == "" {
		s.reply(w, log, http.StatusNotFound, "no ready file configured")
		return
	}
	p, ok := s.params(w, r, log, false)
	if !ok {
		return
	}
	if terminate {
		s.mu.Lock()
		s.terminateLocked(name)
		s.mu.Unlock()
	}
	arrived := time.Now()
	limit, stop := deadlineTimer(p.Deadline)
	defer stop()
	every := s.ReadyFileInterval
	if every <= 0 {
		every = DefaultReadyFileInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	// found answers 200 when the file exists.
	found := func() bool {
		if !fileExists(s.ReadyFile) {
			return false
		}
		s.reply(w, log, http.StatusOK, fmt.Sprintf("ready file %s exists after %s", s.ReadyFile, time.Since(arrived).Round(time.Millisecond)))
		return true
	}
	for checks := 1; ; checks++ {
		if found() {
			return
		}
		lvl := hclog.Debug
		if checks == 1 {
			lvl = hclog.Info
		}
		log.Log(lvl, "ready file does not exist yet", "path", s.ReadyFile, "recheck_in", every)
		select {
		case <-tick.C:
		case <-s.readyWritten:
		case <-limit:
			s.reply(w, log, http.StatusRequestTimeout, fmt.Sprintf("deadline: no ready file %s after %s", s.ReadyFile, p.Deadline))
			return
		case <-r.Context().Done():
			log.Info("caller left", "waited", time.Since(arrived))
			return
		case <-s.closing:
			// The file may have come since the last look: in Contour's
			// layout the manager's SIGTERM follows the exec hook that
			// wrote it at once.
			if !found() {
				s.reply(w, log, http.StatusServiceUnavailable, "manager exiting")
			}
			return
		}
	}
}

// handleReadyFile is /shutdown/ready: always the ready-file wait.
func (s *Server) handleReadyFile(w http.ResponseWriter, r *http.Request) {
	s.serveReadyFile(w, r, "shutdown/ready", true)
}

// handleWaitz is k8s-prestop-sidecar's /waitz: it returns once no
// load-balancer hit was seen for Interval, plus Cooldown.
func (s *Server) handleWaitz(w http.ResponseWriter, r *http.Request) {
	log := s.requestLog("waitz", r)
	release, ok := s.admit(w, r, log, false)
	if !ok {
		return
	}
	defer release()
	s.mu.Lock()
	s.waitz++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waitz--
		close(s.waitzLeft)
		s.waitzLeft = make(chan struct{})
		s.mu.Unlock()
	}()
	arrived := time.Now()
	limit, stop := deadlineTimer(s.WaitzTimeout)
	defer stop()
	log.Info("waiting for load-balancer hits to stop", "interval", s.Interval, "cooldown", s.Cooldown)
	err := s.waitQuiet(r.Context(), limit, s.closing)
	if err == nil {
		log.Info("load balancer quiet; cooling down", "cooldown", s.Cooldown, "lb_hits", s.hits.Load())
		err = sleepCtx(r.Context(), limit, s.closing, s.Cooldown)
	}
	switch {
	case err == nil:
		s.reply(w, log, http.StatusOK, fmt.Sprintf("no load-balancer hit for %s, then %s cooldown; waited %s", s.Interval, s.Cooldown, time.Since(arrived).Round(time.Millisecond)))
	case errors.Is(err, errClosing):
		s.reply(w, log, http.StatusServiceUnavailable, "manager exiting")
	case errors.Is(err, errLimit):
		s.reply(w, log, http.StatusRequestTimeout, fmt.Sprintf("deadline: load-balancer hits did not stop within %s", s.WaitzTimeout))
	default:
		log.Info("caller left", "waited", time.Since(arrived))
	}
}

// deadlineTimer returns a channel that fires after d, or nil (never) when d
// is zero, and a stop function.
func deadlineTimer(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		return nil, func() {}
	}
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// handleHealthz always answers 200: the manager is alive.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	plain(w, http.StatusOK, "ok")
}

// handleReadyz answers 200, then 503 once termination started. It is not a
// load-balancer hit.
func (s *Server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if s.terminating.Load() {
		plain(w, http.StatusServiceUnavailable, "terminating")
		return
	}
	plain(w, http.StatusOK, "ok")
}

// handleProbe is every other path: a load-balancer health check (GET or
// HEAD). It answers like /readyz and is counted for /waitz. A path that
// looks like a mistyped control path is no health check: it is a 404,
// logged as an error, so a typo in a preStop hook shows.
func (s *Server) handleProbe(w http.ResponseWriter, r *http.Request) {
	if c := mistypedControl(r.URL.Path); c != "" {
		s.refusals.log(s.log, hclog.Error, "unknown control path; nothing done", "path", r.URL.Path, "method", r.Method, "valid", c, "remote", r.RemoteAddr)
		writeLine(w, http.StatusNotFound, fmt.Sprintf("unknown path %q: nothing done (did you mean %s?)", r.URL.Path, c))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeLine(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed (valid: GET, HEAD)")
		return
	}
	s.hits.Add(1)
	s.lastHit.Store(time.Now().UnixNano())
	status, msg := http.StatusOK, "ok"
	if s.terminating.Load() {
		status, msg = http.StatusServiceUnavailable, "terminating"
	}
	lvl := hclog.Trace
	if s.LogHits {
		lvl = hclog.Info
	}
	s.log.Log(lvl, "load-balancer hit", "context", "probe", "path", r.URL.Path, "remote", r.RemoteAddr, "status", status)
	plain(w, status, msg)
}

// Status is what /status answers, as JSON.
type Status struct {
	Terminating bool   `json:"terminating"`
	Drain       string `json:"drain"` // "none", "running" or "done"
	Reason      string `json:"reason,omitempty"`
	Remaining   uint64 `json:"remaining"`
	Waiters     int    `json:"waiters"`
	LBHits      uint64 `json:"lb_hits"`
	ReadyFile   bool   `json:"ready_file"`
}

// State returns what /status answers.
func (s *Server) State() Status {
	s.init()
	st := Status{
		Terminating: s.terminating.Load(),
		Drain:       "none",
		Waiters:     len(s.waiters),
		LBHits:      s.hits.Load(),
		ReadyFile:   s.ReadyFile != "" && fileExists(s.ReadyFile),
	}
	if run := s.currentDrain(); run != nil {
		st.Drain = "running"
		select {
		case <-run.done:
			st.Drain, st.Reason, st.Remaining = "done", string(run.res.Reason), run.res.Remaining
		default:
		}
	}
	return st
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	b, _ := json.Marshal(s.State())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// plain answers probes: one word, no log.
func plain(w http.ResponseWriter, status int, msg string) {
	writeLine(w, status, msg)
}

// writeLine writes a one-line text answer.
func writeLine(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
