package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/wrapper"
)

// forwarded are the signals relayed to the app: every catchable one, as
// tini does, except
//   - SIGCHLD (the reaper's), SIGURG (the Go runtime's preemption signal;
//     forwarding it has killed Python apps under other wrappers) and SIGPROF
//     (the runtime's profiler);
//   - SIGPIPE: once notified, Go reports the wrapper's own EPIPE writes (a
//     socket, a closed stderr pipe) as SIGPIPE, which must never reach the app;
//   - SIGTSTP, SIGTTIN, SIGTTOU: job control stops the wrapper with its app
//     (the terminal signals the whole group), so Ctrl-Z keeps working;
//   - the synchronous signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT), which are
//     about the wrapper itself.
var forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM,
	syscall.SIGCONT, syscall.SIGPWR, syscall.SIGXCPU, syscall.SIGXFSZ,
	syscall.SIGVTALRM, syscall.SIGIO,
}

// harmless are the forwarded signals whose default action would not have
// ended the app: they do not end the readiness wait, since there is no app
// yet to give them to.
var harmless = map[os.Signal]bool{syscall.SIGWINCH: true, syscall.SIGCONT: true}

// defaultTerminationLog is where Kubernetes reads a container's termination
// message.
const defaultTerminationLog = "/dev/termination-log"

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "envoy-lifecycle %s (commit %s, %s)\n", version, commit, runtime.Version())
}

// wrap is the wrap mode: wait for Envoy, run the app, stop the proxy.
func wrap(argv []string, stderr io.Writer) int {
	// Installed before anything that can take time, and kept for the life of
	// the process: Go's default for TERM, INT and HUP is to exit, which is how
	// other wrappers die during the readiness wait without stopping Envoy.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded...)

	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitUsage
	}
	log := cfg.NewLogger(stderr)
	l, err := newLifecycle(cfg, log, sigs)
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitUsage
	}
	if cfg.Subreaper {
		if err := wrapper.SetSubreaper(); err != nil {
			log.Warn("cannot become a child subreaper", "error", err)
		}
	}
	return l.run(argv)
}

// lifecycle is one run of the wrap mode.
type lifecycle struct {
	cfg   *Config
	log   hclog.Logger
	sigs  <-chan os.Signal
	admin *envoy.Client // nil: local development, no Envoy
	stop  *quit.Policy
	drain *quit.Drain // nil: forward termination signals at once

	// What happened, for the termination message.
	drained *quit.Result
	stopped *quit.Report
	// termSent is when a termination signal reached the app, to log how
	// long it took to stop.
	termSent time.Time
	// shutdownBy is the one deadline of a graceful termination, set when
	// its signal arrives: drain, stop and quit all fit before it, so the
	// pod's grace period can be sized from the settings. Zero otherwise.
	shutdownBy time.Time
}

func newLifecycle(cfg *Config, log hclog.Logger, sigs <-chan os.Signal) (*lifecycle, error) {
	l := &lifecycle{cfg: cfg, log: log, sigs: sigs}
	elog := log.Named("envoy")
	l.stop = &quit.Policy{
		Generic:        cfg.GenericQuitEndpoints,
		GenericOnly:    cfg.GenericQuitOnly,
		Pkill:          cfg.IstioFallbackPkill,
		KillURL:        cfg.KillAPI,
		Never:          cfg.NeverKillEnvoy || cfg.NeverKillIstio,
		NeverOnFailure: cfg.NeverKillIstioOnFailure,
		Timeout:        cfg.QuitRequestTimeout,
		Retries:        cfg.QuitRetries,
		Verify:         cfg.QuitVerify,
		Logger:         log.Named("quit"),
	}
	var err error
	if cfg.AdminAPI != "" {
		if l.admin, err = envoy.New(cfg.AdminAPI, envoy.Options{Timeout: cfg.RequestTimeout, Logger: elog}); err != nil {
			return nil, fmt.Errorf("ENVOY_ADMIN_API: %w", err)
		}
		// Quit requests get their own, longer timeout.
		if l.stop.Envoy, err = envoy.New(cfg.AdminAPI, envoy.Options{Timeout: cfg.QuitRequestTimeout, Logger: elog}); err != nil {
			return nil, fmt.Errorf("ENVOY_ADMIN_API: %w", err)
		}
	}
	if l.admin != nil && cfg.Drain {
		l.drain = &quit.Drain{
			Admin:          l.admin,
			Delay:          cfg.DrainDelay,
			SkipIdleDelay:  cfg.DrainSkipIdle,
			InboundOnly:    true,
			Period:         cfg.DrainPeriod,
			Deadline:       cfg.DrainDeadline,
			MinConnections: cfg.DrainMinConnections,
			Selector:       cfg.selector,
			Logger:         log.Named("drain"),
		}
	}
	if cfg.IstioQuitAPI != "" {
		if l.stop.Istio, err = envoy.New(cfg.IstioQuitAPI, envoy.Options{Timeout: cfg.QuitRequestTimeout, Logger: log.Named("istio")}); err != nil {
			return nil, fmt.Errorf("ISTIO_QUIT_API: %w", err)
		}
	}
	return l, nil
}

func (l *lifecycle) run(argv []string) int {
	if l.admin == nil {
		l.log.Debug("no admin address; running the app without envoy", "reason", "ENVOY_ADMIN_API not set")
	} else if l.cfg.StartWithoutEnvoy {
		l.log.Info("not waiting for envoy", "reason", "START_WITHOUT_ENVOY")
	} else if code, ok := l.waitLive(); !ok {
		return code
	}

	child, err := wrapper.New(wrapper.Options{
		Command: argv[0],
		Args:    argv[1:],
		Setpgid: l.cfg.ProcessGroup,
		Logger:  l.log.Named("wrapper"),
	})
	if err == nil {
		err = child.Start()
	}
	if err != nil {
		code := exitSoftware
		var es interface{ ExitStatus() int }
		if errors.As(err, &es) {
			code = es.ExitStatus()
		}
		l.log.Error("cannot start app", "command", argv[0], "error", err, "code", code)
		l.stopProxy(code)
		l.terminationMessage(code, fmt.Sprintf("cannot start app: %v", err))
		return code
	}
	l.log.Info("app started", "pid", child.Pid(), "command", argv[0])

	st, drained := l.supervise(child)
	code := st.Code()
	if l.termSent.IsZero() {
		l.log.Info("app exited", "code", code, "status", st.String())
	} else {
		l.log.Info("app exited", "code", code, "status", st.String(), "after_signal", time.Since(l.termSent))
	}
	// A Job that finished: drain without the endpoint delay, then stop. Not
	// when the proxy is kept (NEVER_KILL_*), since the app may be retried.
	if l.drain != nil && !drained && l.stop.WillStop(code) {
		ctx, cancel := context.WithCancel(context.Background())
		r := l.drain.Run(ctx, true)
		l.drained = &r
		cancel()
	}
	l.stopProxy(code)
	l.terminationMessage(code, "app exited ("+st.String()+")")
	return code
}

// waitLive blocks until Envoy is LIVE. ok is false when the app must not be
// started; code is then the exit code.
func (l *lifecycle) waitLive() (code int, ok bool) {
	limit, giveUp := l.cfg.QuitWithoutEnvoyTimeout, true
	if limit == 0 {
		limit, giveUp = l.cfg.WaitForEnvoyTimeout, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if limit > 0 {
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	// MaxElapsedTime 0: the deadline is ctx's, chosen above, never the
	// library's silent 15 minute default.
	b := &backoff.ExponentialBackOff{
		InitialInterval:     l.cfg.PollInitial,
		RandomizationFactor: 0,
		Multiplier:          1.5,
		MaxInterval:         l.cfg.PollMax,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()

	start := time.Now()
	l.log.Info("waiting for envoy", "admin", l.admin.Base().String(), "limit", limitString(limit))
	var lastLog time.Time
	notify := func(err error, next time.Duration) {
		// Sparingly: a line every 5s, the rest at debug.
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			if time.Since(start) > time.Second {
				l.log.Info("envoy not live yet", "waited", time.Since(start).Round(time.Millisecond), "reason", err)
			}
		}
		l.log.Trace("envoy not live yet", "reason", err, "retry_in", next)
	}
	lastLog = start

	done := make(chan error, 1)
	go func() { done <- l.admin.WaitLive(ctx, b, notify) }()
	for {
		select {
		case err := <-done:
			if err == nil {
				l.log.Info("envoy live", "waited", time.Since(start).Round(time.Microsecond))
				return 0, true
			}
			if !giveUp && errors.Is(err, context.DeadlineExceeded) {
				l.log.Warn("envoy not live; starting the app anyway", "reason", "WAIT_FOR_ENVOY_TIMEOUT", "waited", limit)
				return 0, true
			}
			l.log.Error("envoy not live; giving up", "reason", "QUIT_WITHOUT_ENVOY_TIMEOUT", "waited", limit, "error", err)
			l.stopProxy(exitUnavailable)
			l.terminationMessage(exitUnavailable, fmt.Sprintf("envoy not LIVE within %v (QUIT_WITHOUT_ENVOY_TIMEOUT); app not started", limit))
			return exitUnavailable, false
		case sig := <-l.sigs:
			// A signal whose default action would have ended the app ends
			// the wait. The others (a terminal resize, job control) do
			// not: the app reads the terminal when it starts.
			if harmless[sig] {
				l.log.Debug("signal ignored while waiting for envoy", "signal", sig.String())
				continue
			}
			cancel()
			<-done
			code := 128 + int(sig.(syscall.Signal))
			l.log.Info("signal while waiting for envoy; app not started", "signal", sig.String())
			l.stopProxy(code)
			l.terminationMessage(code, fmt.Sprintf("signal %s while waiting for envoy; app not started", sig))
			return code, false
		}
	}
}

func limitString(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return d.String()
}

// supervise forwards signals to the app until it exits. A termination signal
// first drains Envoy, when configured, and reaches the app after; a second
// one (or SIGINT) skips the rest of the drain. drained reports whether a
// drain ran.
func (l *lifecycle) supervise(child *wrapper.Child) (st wrapper.Status, drained bool) {
	var (
		drainDone   chan quit.Result // non-nil while draining
		cancelDrain context.CancelFunc
		held        []os.Signal // signals held back until the drain ends
		killTimer   <-chan time.Time
	)
	armKill := func() {
		if l.termSent.IsZero() {
			l.termSent = time.Now()
		}
		if l.cfg.StopTimeout > 0 && killTimer == nil {
			killTimer = time.After(l.cfg.StopTimeout)
		}
	}
	for {
		select {
		case st := <-child.ExitCh():
			if drainDone != nil {
				// The app is gone mid-drain: health checks are failed and
				// listeners draining already, so the rest of the drain is
				// moot and must not start over.
				cancelDrain()
				r := <-drainDone
				l.drained = &r
				drained = true
			}
			return st, drained
		case sig := <-l.sigs:
			switch {
			case drainDone != nil && (l.cfg.termSignals[sig] || sig == syscall.SIGINT):
				l.log.Info("second signal; skipping the rest of the drain", "signal", sig.String())
				// A repeat of the held signal only cuts the drain short: the
				// app gets it once (the kernel would merge the two anyway),
				// so its first-signal cleanup is not cut short in turn.
				if !slices.Contains(held, sig) {
					held = append(held, sig)
				}
				cancelDrain()
			case drainDone == nil && !drained && l.drain != nil && l.cfg.termSignals[sig]:
				l.startShutdownClock()
				l.log.Info("termination signal; draining envoy before the app", "signal", sig.String(), "shutdown_budget", l.cfg.ShutdownBudget())
				held = append(held, sig)
				drainDone, cancelDrain = l.startDrain()
			default:
				l.forward(child, sig)
				if l.cfg.termSignals[sig] {
					l.startShutdownClock()
					armKill()
				}
			}
		case r := <-drainDone:
			l.drained = &r
			drainDone, drained = nil, true
			cancelDrain()
			for _, s := range held {
				l.forward(child, s)
			}
			held = nil
			armKill()
		case <-killTimer:
			l.log.Warn("app did not exit in time; killing it", "stop_timeout", l.cfg.StopTimeout)
			if err := child.Kill(); err != nil {
				l.log.Warn("cannot kill app", "error", err)
			}
		}
	}
}

// startShutdownClock starts the graceful termination's one deadline, once.
func (l *lifecycle) startShutdownClock() {
	if b := l.cfg.ShutdownBudget(); l.shutdownBy.IsZero() && b > 0 {
		l.shutdownBy = time.Now().Add(b)
	}
}

// startDrain runs the drain in the background under a fresh context: the
// signal that started it must not cancel it, only a second one.
func (l *lifecycle) startDrain() (chan quit.Result, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan quit.Result, 1)
	go func() { done <- l.drain.Run(ctx, false) }()
	return done, cancel
}

func (l *lifecycle) forward(child *wrapper.Child, sig os.Signal) {
	err := child.Signal(sig)
	switch {
	case err == nil:
		l.log.Debug("signal forwarded", "signal", sig.String(), "pid", child.Pid())
	case errors.Is(err, os.ErrProcessDone):
		l.log.Warn("app was dead when forwarding signal", "signal", sig.String())
	default:
		l.log.Error("cannot forward signal", "signal", sig.String(), "error", err)
	}
}

// stopProxy runs the quit policy under its own deadline: the signal that led
// here must not cancel it.
func (l *lifecycle) stopProxy(code int) {
	// Outside a termination nothing is waiting on us but the pod, so quit
	// requests get all their retries; during one, the shutdown deadline
	// bounds them, which leaves them at least quitBudget.
	budget := time.Duration(l.cfg.QuitRetries)*(l.cfg.QuitRequestTimeout+time.Second) + l.cfg.QuitVerify
	by := time.Now().Add(budget)
	if !l.shutdownBy.IsZero() && l.shutdownBy.Before(by) {
		by = l.shutdownBy
	}
	// Past the deadline (an app reaped late), still make one real attempt:
	// a proxy left running keeps a Job from ever finishing.
	if floor := time.Now().Add(min(l.cfg.QuitRequestTimeout, quitBudget)); by.Before(floor) {
		by = floor
	}
	ctx, cancel := context.WithDeadline(context.Background(), by)
	defer cancel()
	rep := l.stop.Stop(ctx, code)
	l.stopped = &rep
}

// terminationMessage writes one line saying why the wrapper exits and what it
// did, where Kubernetes shows it in kubectl describe pod. It is best effort:
// a read-only or missing file is logged at debug and ignored.
func (l *lifecycle) terminationMessage(code int, why string) {
	path := l.cfg.TerminationLog
	if path == "" {
		return
	}
	flags := os.O_WRONLY | os.O_TRUNC
	// The default path exists only in a Kubernetes container: never create
	// it on a developer's machine. A path the user chose is created.
	if path != defaultTerminationLog {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		l.log.Debug("no termination log written", "path", path, "error", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, terminationLine(code, why, l.drained, l.stopped))
}

// terminationLine is the termination message: exit code and cause, the
// drain and the quit.
func terminationLine(code int, why string, d *quit.Result, s *quit.Report) string {
	msg := fmt.Sprintf("envoy-lifecycle exit %d: %s", code, why)
	if d != nil {
		msg += fmt.Sprintf("; drain %v (%s, %d connections left)", d.Took.Round(time.Millisecond), d.Reason, d.Remaining)
	}
	switch {
	case s == nil:
	case s.Skipped != "":
		msg += "; proxy left running: " + s.Skipped
	case s.Method == "" && s.Err == nil:
		// Nothing to stop: local development.
	case s.Err != nil && s.Method == "":
		msg += fmt.Sprintf("; proxy NOT stopped: %v", s.Err)
	default:
		msg += "; proxy stopped via " + s.Method
		if s.Gone {
			msg += " (gone)"
		}
	}
	return msg
}
