// Package lifecycle is the wrap mode's runner: wait for Envoy to be LIVE,
// start the app, forward signals, drain Envoy before a termination signal
// reaches the app, and stop the proxy, all under one shutdown deadline. It
// returns an Outcome; the caller turns it into an exit code and the
// termination message.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/readiness"
	"envoy-lifecycle/wrapper"
)

// Options configure one run. Every duration is used as given: the caller
// applies the defaults.
type Options struct {
	// Signals delivers the signals to act on; the caller owns
	// signal.Notify (wrapper.Catch), so tests can drive it. Required.
	Signals <-chan os.Signal
	// TermSignals start the graceful termination; the rest are forwarded at
	// once. SIGINT during a drain always cuts it short.
	TermSignals map[os.Signal]bool

	// Admin is Envoy's admin. Nil: local development, no wait and no drain.
	Admin *envoy.Client
	// StartWithoutEnvoy skips the readiness wait.
	StartWithoutEnvoy bool
	// QuitWithoutEnvoy, when non-zero, ends the wait with CauseEnvoyNotLive.
	// Otherwise WaitForEnvoy, when non-zero, starts the app anyway after it;
	// both zero waits forever.
	QuitWithoutEnvoy, WaitForEnvoy time.Duration
	// PollInitial and PollMax bound the readiness polls' interval.
	PollInitial, PollMax time.Duration
	// Readiness are checked once Envoy is LIVE, before the app starts
	// (ready.go). Nil: none.
	Readiness []readiness.Condition

	// Drain runs on the first termination signal, before the app gets it.
	// Nil: forward termination signals at once.
	Drain *quit.Drain
	// Stop stops the proxy on every exit path. Required.
	Stop *quit.Policy
	// QuitRequestTimeout, QuitRetries and QuitVerify size the quit's own
	// deadline outside a termination (Stop's Timeout, Retries and Verify).
	QuitRequestTimeout time.Duration
	QuitRetries        int
	QuitVerify         time.Duration
	// StopTimeout is how long the app has after a forwarded termination
	// signal before it is killed. Zero: wait for it.
	StopTimeout time.Duration
	// ShutdownBudget is the one deadline of a graceful termination, from
	// its signal (see ShutdownBudget). Zero: unbounded.
	ShutdownBudget time.Duration

	// Command and Args are the app; Setpgid runs it in its own group.
	Command string
	Args    []string
	Setpgid bool

	// Codes are the caller's exit codes for the runner's own failures: the
	// runner needs them before it stops the proxy, which may keep the proxy
	// on a non-zero code.
	Codes Codes
	// Logger may be nil (no logs).
	Logger hclog.Logger
}

// Codes are exit codes the caller chooses.
type Codes struct {
	// Unavailable: Envoy not LIVE within QuitWithoutEnvoy.
	Unavailable int
	// Software: the app could not be started for a reason of ours.
	Software int
}

// Cause says why a run ended.
type Cause int

// The causes of Outcome.
const (
	// CauseAppExited: the app ran and exited; Code is its code (n, or 128+n
	// for signal n).
	CauseAppExited Cause = iota
	// CauseStartFailed: the app could not be started; Code is 127 not
	// found, 126 not executable, Codes.Software otherwise.
	CauseStartFailed
	// CauseSignalWhileWaiting: a signal ended the readiness wait; Code is
	// 128+n and the app never started.
	CauseSignalWhileWaiting
	// CauseEnvoyNotLive: QuitWithoutEnvoy passed; Code is Codes.Unavailable.
	CauseEnvoyNotLive
	// CauseNotReady: a fatal readiness condition was not met in time; Code
	// is Codes.Unavailable and the app never started.
	CauseNotReady
)

// Outcome is what a run did.
type Outcome struct {
	Code  int
	Cause Cause
	// Why says in words why the run ended, for the termination message.
	Why string
	// Drained is the drain's result, nil if none ran.
	Drained *quit.Result
	// Stopped is the quit's report, nil if none ran.
	Stopped *quit.Report
}

// Runner is one run of the wrap mode.
type Runner struct {
	o   Options
	log hclog.Logger

	drained *quit.Result
	stopped *quit.Report
	// live is set once Envoy was seen LIVE: only then are the readiness
	// conditions worth waiting for.
	live bool
	// termSent is when a termination signal reached the app, to log how
	// long it took to stop.
	termSent time.Time
	// shutdownBy is the one deadline of a graceful termination, set when
	// its signal arrives: drain, stop and quit all fit before it, so the
	// pod's grace period can be sized from the settings. Zero otherwise.
	shutdownBy time.Time
}

// ErrNoSignals means Options.Signals is nil.
var ErrNoSignals = errors.New("lifecycle: Options.Signals is nil")

// ErrNoStop means Options.Stop is nil.
var ErrNoStop = errors.New("lifecycle: Options.Stop is nil")

// New checks o and returns a runner for one run.
func New(o Options) (*Runner, error) {
	switch {
	case o.Signals == nil:
		return nil, ErrNoSignals
	case o.Stop == nil:
		return nil, ErrNoStop
	}
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Runner{o: o, log: log}, nil
}

// Run waits for Envoy, runs the app until it exits and stops the proxy.
func (r *Runner) Run() Outcome {
	switch {
	case r.o.Admin == nil:
		r.log.Debug("no admin address; running the app without envoy", "reason", "ENVOY_ADMIN_API not set")
	case r.o.StartWithoutEnvoy:
		r.log.Info("not waiting for envoy", "reason", "START_WITHOUT_ENVOY")
	default:
		if out, ok := r.waitLive(); !ok {
			return out
		}
		if out, ok := r.waitReady(); !ok {
			return out
		}
	}

	child, err := wrapper.New(wrapper.Options{
		Command: r.o.Command,
		Args:    r.o.Args,
		Setpgid: r.o.Setpgid,
		Logger:  r.log.Named("wrapper"),
	})
	if err == nil {
		err = child.Start()
	}
	if err != nil {
		code := r.o.Codes.Software
		var es interface{ ExitStatus() int }
		if errors.As(err, &es) {
			code = es.ExitStatus()
		}
		r.log.Error("cannot start app", "command", r.o.Command, "error", err, "code", code)
		return r.end(code, CauseStartFailed, fmt.Sprintf("cannot start app: %v", err))
	}
	r.log.Info("app started", "pid", child.Pid(), "command", r.o.Command)

	st, drained := r.supervise(child)
	code := st.Code()
	if r.termSent.IsZero() {
		r.log.Info("app exited", "code", code, "status", st.String())
	} else {
		r.log.Info("app exited", "code", code, "status", st.String(), "after_signal", time.Since(r.termSent))
	}
	r.stopOrphans()
	// A Job that finished: drain without the endpoint delay, then stop. Not
	// when the proxy is kept (NEVER_KILL_*), since the app may be retried.
	if r.o.Drain != nil && !drained && r.o.Stop.WillStop(code) {
		ctx, cancel := context.WithCancel(context.Background())
		res := r.o.Drain.Run(ctx, true)
		r.drained = &res
		cancel()
	}
	return r.end(code, CauseAppExited, "app exited ("+st.String()+")")
}

// stopOrphans, when we are PID 1, gives the processes the app left behind
// SIGTERM and orphanGrace before SIGKILL.
func (r *Runner) stopOrphans() {
	wrapper.StopOrphans(orphanGrace(r.o.StopTimeout, r.shutdownBy, time.Now()), r.log.Named("wrapper"))
}

// orphanGrace is stopTimeout (DefaultStopTimeout if 0, so no orphan holds
// the exit forever), and during a graceful termination (shutdownBy set) no
// more than what the budget leaves before the proxy's QuitBudget.
func orphanGrace(stopTimeout time.Duration, shutdownBy, now time.Time) time.Duration {
	grace := stopTimeout
	if grace == 0 {
		grace = DefaultStopTimeout
	}
	if !shutdownBy.IsZero() {
		grace = max(0, min(grace, shutdownBy.Sub(now)-QuitBudget))
	}
	return grace
}

// end stops the proxy and reports.
func (r *Runner) end(code int, cause Cause, why string) Outcome {
	r.stopProxy(code)
	return Outcome{Code: code, Cause: cause, Why: why, Drained: r.drained, Stopped: r.stopped}
}

// waitLive blocks until Envoy is LIVE. ok is false when the app must not be
// started; out is then the outcome.
func (r *Runner) waitLive() (out Outcome, ok bool) {
	limit, giveUp := r.o.QuitWithoutEnvoy, true
	if limit == 0 {
		limit, giveUp = r.o.WaitForEnvoy, false
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
		InitialInterval:     r.o.PollInitial,
		RandomizationFactor: 0,
		Multiplier:          1.5,
		MaxInterval:         r.o.PollMax,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()

	start := time.Now()
	r.log.Info("waiting for envoy", "admin", r.o.Admin.Base().String(), "limit", limitString(limit))
	var lastLog time.Time
	notify := func(err error, next time.Duration) {
		// Sparingly: a line every 5s, the rest at debug.
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			if time.Since(start) > time.Second {
				r.log.Info("envoy not live yet", "waited", time.Since(start).Round(time.Millisecond), "reason", err)
			}
		}
		r.log.Trace("envoy not live yet", "reason", err, "retry_in", next)
	}
	lastLog = start

	done := make(chan error, 1)
	go func() { done <- r.o.Admin.WaitLive(ctx, b, notify) }()
	for {
		select {
		case err := <-done:
			if err == nil {
				r.log.Info("envoy live", "waited", time.Since(start).Round(time.Microsecond))
				r.live = true
				return Outcome{}, true
			}
			if !giveUp && errors.Is(err, context.DeadlineExceeded) {
				r.log.Warn("envoy not live; starting the app anyway", "reason", "WAIT_FOR_ENVOY_TIMEOUT", "waited", limit)
				return Outcome{}, true
			}
			r.log.Error("envoy not live; giving up", "reason", "QUIT_WITHOUT_ENVOY_TIMEOUT", "waited", limit, "error", err)
			return r.end(r.o.Codes.Unavailable, CauseEnvoyNotLive, fmt.Sprintf("envoy not LIVE within %v (QUIT_WITHOUT_ENVOY_TIMEOUT); app not started", limit)), false
		case sig := <-r.o.Signals:
			// A signal whose default action would have ended the app ends
			// the wait. The others (a terminal resize, SIGCONT) do not:
			// there is no app yet to give them to.
			if !endsWait(sig) {
				r.log.Debug("signal ignored while waiting for envoy", "signal", sig.String())
				continue
			}
			cancel()
			<-done
			r.log.Info("signal while waiting for envoy; app not started", "signal", sig.String())
			return r.end(128+signalNumber(sig), CauseSignalWhileWaiting, fmt.Sprintf("signal %s while waiting for envoy; app not started", sig)), false
		}
	}
}

// endsWait reports whether sig's default action would end a process.
func endsWait(sig os.Signal) bool {
	s, ok := sig.(syscall.Signal)
	return !ok || wrapper.Lookup(s).Default.Ends()
}

// signalNumber is sig's number; a signal that is not a syscall.Signal (none
// reaches us from signal.Notify) counts as SIGTERM.
func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return int(syscall.SIGTERM)
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
func (r *Runner) supervise(child *wrapper.Child) (st wrapper.Status, drained bool) {
	var (
		drainDone   chan quit.Result // non-nil while draining
		cancelDrain context.CancelFunc
		held        []os.Signal // signals held back until the drain ends
		killTimer   <-chan time.Time
	)
	armKill := func() {
		if r.termSent.IsZero() {
			r.termSent = time.Now()
		}
		if r.o.StopTimeout > 0 && killTimer == nil {
			killTimer = time.After(r.o.StopTimeout)
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
				res := <-drainDone
				r.drained = &res
				drained = true
			}
			return st, drained
		case sig := <-r.o.Signals:
			switch {
			case drainDone != nil && (r.o.TermSignals[sig] || sig == syscall.SIGINT):
				r.log.Info("second signal; skipping the rest of the drain", "signal", sig.String())
				// A repeat of the held signal only cuts the drain short: the
				// app gets it once (the kernel would merge the two anyway),
				// so its first-signal cleanup is not cut short in turn.
				if !slices.Contains(held, sig) {
					held = append(held, sig)
				}
				cancelDrain()
			case drainDone == nil && !drained && r.o.Drain != nil && r.o.TermSignals[sig]:
				r.startShutdownClock()
				r.log.Info("termination signal; draining envoy before the app", "signal", sig.String(), "shutdown_budget", r.o.ShutdownBudget)
				held = append(held, sig)
				drainDone, cancelDrain = r.startDrain()
			default:
				r.forward(child, sig)
				if r.o.TermSignals[sig] {
					r.startShutdownClock()
					armKill()
				}
			}
		case res := <-drainDone:
			r.drained = &res
			drainDone, drained = nil, true
			cancelDrain()
			for _, s := range held {
				r.forward(child, s)
			}
			held = nil
			armKill()
		case <-killTimer:
			r.log.Warn("app did not exit in time; killing it", "stop_timeout", r.o.StopTimeout)
			if err := child.Kill(); err != nil {
				r.log.Warn("cannot kill app", "error", err)
			}
		}
	}
}

// startShutdownClock starts the graceful termination's one deadline, once.
func (r *Runner) startShutdownClock() {
	if b := r.o.ShutdownBudget; r.shutdownBy.IsZero() && b > 0 {
		r.shutdownBy = time.Now().Add(b)
	}
}

// startDrain runs the drain in the background under a fresh context: the
// signal that started it must not cancel it, only a second one.
func (r *Runner) startDrain() (chan quit.Result, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan quit.Result, 1)
	go func() { done <- r.o.Drain.Run(ctx, false) }()
	return done, cancel
}

func (r *Runner) forward(child *wrapper.Child, sig os.Signal) {
	if child.TerminalDelivered(sig) {
		// Ctrl-C reached the app's group, ours, from the terminal itself.
		r.log.Debug("signal not forwarded: the terminal delivered it to the app", "signal", sig.String())
		return
	}
	err := child.Signal(sig)
	switch {
	case err == nil:
		r.log.Debug("signal forwarded", "signal", sig.String(), "pid", child.Pid())
	case errors.Is(err, os.ErrProcessDone):
		r.log.Warn("app was dead when forwarding signal", "signal", sig.String())
	default:
		r.log.Error("cannot forward signal", "signal", sig.String(), "error", err)
	}
}

// stopProxy runs the quit policy under its own deadline: the signal that led
// here must not cancel it.
func (r *Runner) stopProxy(code int) {
	// Outside a termination nothing is waiting on us but the pod, so quit
	// requests get all their retries; during one, the shutdown deadline
	// bounds them, which leaves them at least QuitBudget.
	budget := time.Duration(r.o.QuitRetries)*(r.o.QuitRequestTimeout+time.Second) + r.o.QuitVerify
	by := time.Now().Add(budget)
	if !r.shutdownBy.IsZero() && r.shutdownBy.Before(by) {
		by = r.shutdownBy
	}
	// Past the deadline (an app reaped late), still make one real attempt:
	// a proxy left running keeps a Job from ever finishing.
	if floor := time.Now().Add(min(r.o.QuitRequestTimeout, QuitBudget)); by.Before(floor) {
		by = floor
	}
	ctx, cancel := context.WithDeadline(context.Background(), by)
	defer cancel()
	rep := r.o.Stop.Stop(ctx, code)
	r.stopped = &rep
}
