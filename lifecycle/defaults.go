package lifecycle

import (
	"os"
	"syscall"
	"time"
)

// Defaults of the wrap mode that other code sizes things from: the help
// text, the README table and inject's grace periods read them here, and a
// test checks the environment's defaults against them.
const (
	// DefaultDrainDelay is ENVOY_LIFECYCLE_DRAIN_DELAY's default.
	DefaultDrainDelay = 5 * time.Second
	// DefaultDrainDeadline is ENVOY_LIFECYCLE_DRAIN_DEADLINE's default.
	DefaultDrainDeadline = 15 * time.Second
	// DefaultStopTimeout is ENVOY_LIFECYCLE_STOP_TIMEOUT's default.
	DefaultStopTimeout = 10 * time.Second
	// DefaultQuitRequestTimeout is QUIT_REQUEST_TIMEOUT's default.
	DefaultQuitRequestTimeout = 5 * time.Second
	// DefaultQuitWithoutEnvoy bounds the readiness wait when the user set no
	// timeout at all: a proxy that never comes up must not hold a Job forever.
	DefaultQuitWithoutEnvoy = 10 * time.Minute
	// QuitBudget is the part of the shutdown budget kept for stopping the
	// proxy, and the least a late quit still gets.
	QuitBudget = 3 * time.Second
)

// ShutdownBudget is the longest a graceful termination takes: the drain, the
// app's stop timeout and QuitBudget to stop the proxy. Size the pod's
// terminationGracePeriodSeconds to at least this. Zero means unbounded
// (drainDeadline or stopTimeout is 0).
func ShutdownBudget(drainDeadline, stopTimeout time.Duration) time.Duration {
	if drainDeadline == 0 || stopTimeout == 0 {
		return 0
	}
	return drainDeadline + stopTimeout + QuitBudget
}

// DefaultShutdownBudget is ShutdownBudget of the defaults (28s).
const DefaultShutdownBudget = DefaultDrainDeadline + DefaultStopTimeout + QuitBudget

// Forwarded are the signals relayed to the app, the one list main passes to
// signal.Notify: every catchable one, as tini does, except
//   - SIGCHLD (the reaper's), SIGURG (the Go runtime's preemption signal;
//     forwarding it has killed Python apps under other wrappers) and SIGPROF
//     (the runtime's profiler);
//   - SIGPIPE: once notified, Go reports the wrapper's own EPIPE writes (a
//     socket, a closed stderr pipe) as SIGPIPE, which must never reach the app;
//   - SIGTSTP, SIGTTIN, SIGTTOU: job control stops the wrapper with its app
//     (the terminal signals the whole group), so Ctrl-Z keeps working;
//   - the synchronous signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT), which are
//     about the wrapper itself.
var Forwarded = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM,
	syscall.SIGCONT, syscall.SIGPWR, syscall.SIGXCPU, syscall.SIGXFSZ,
	syscall.SIGVTALRM, syscall.SIGIO,
}

// harmless are the forwarded signals whose default action would not have
// ended the app: they do not end the readiness wait, since there is no app
// yet to give them to.
var harmless = map[os.Signal]bool{syscall.SIGWINCH: true, syscall.SIGCONT: true}
