package lifecycle

import "time"

// Defaults of the wrap mode that other code sizes things from: the help
// text, the README table and inject's grace periods read them here, and a
// test checks the environment's defaults against them.
const (
	// DefaultDrainDelaySetting is ENVOY_LIFECYCLE_DRAIN_DELAY's default:
	// the adaptive delay. On a real node's rollout through kube-proxy it
	// lost no more requests than DefaultDrainDelay (none) and started the
	// drain 1.2-2.9 s after SIGTERM instead of 5 s (e2e/README.md).
	DefaultDrainDelaySetting = "auto"
	// DefaultDrainDelay is the fixed delay: the default before auto, and
	// what auto waits instead when the traffic counters cannot be read.
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
