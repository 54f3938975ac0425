// Package kubeletsim plays kubelet's part in the life of one pod, with real
// processes and real signals, so that tests can check how lifecycle hooks,
// SIGTERM and the grace period fit together.
//
// Each container is a process (argv and environment) in its own process
// group, which stands for the container: SIGTERM goes to the process
// itself, as kubelet's goes to the container's PID 1, and SIGKILL to the
// whole group, as a container runtime kills every process of the container.
// When a container's main process exits, the rest of its group is killed,
// as the kernel does when a PID namespace's init exits.
//
// Terminate plays the timeline of a pod deletion:
//
//  1. every running container's preStop hook starts at once (exec, httpGet
//     or sleep), bounded by the grace period;
//  2. each container gets SIGTERM when its own hook has returned, or at
//     once if it has none. A native sidecar (Spec.Sidecars) also waits
//     until every regular container and every sidecar after it has exited,
//     so sidecars stop in reverse order after the app;
//  3. when the grace period is over, every process still alive gets SIGKILL.
//
// Every step is recorded as an Event with its time, so a test can assert
// the order of what happened and wait for a step without sleeping.
//
// Start plays the pod's start: init containers to completion, then the
// native sidecars, each after its startup probe, then the containers. When
// every regular container has finished by itself (a Job), the native
// sidecars are stopped as in a termination.
//
// What is left out: probes other than a native sidecar's startup probe,
// postStart hooks, restart back-off (RestartDelay is fixed), init
// containers interleaved with sidecars, and kubelet's minimum of 2 seconds
// given to a container after a preStop hook that used up the grace period
// (here the SIGKILL comes at the grace period, whatever the hooks did).
//
// Checked against a real kubelet (v1.34.4, containerd 1.6) by the real-node
// tests in ../e2e, which run the same examples: the hook, SIGTERM and exit
// order above, a preStop sleep that runs to its end after its container
// exited (02), and a native sidecar's SIGTERM after the app's exit (06)
// agree. What the simulation cannot show, the real node does: every
// container here runs as the test's user with one filesystem, so file
// modes and users between containers are not played (example 04's admin
// socket, which a manager running as another user than Envoy cannot
// connect to, failed only on the real node); and there are no endpoints:
// lbsim's fixed deprogramming delay stands for the Service.
package kubeletsim

import (
	"errors"
	"fmt"
	"time"
)

// RestartPolicy is the pod's restartPolicy, which applies to its regular
// containers. Native sidecars always restart while the pod runs.
type RestartPolicy string

// The restart policies of a pod.
const (
	RestartNever     RestartPolicy = "Never"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartAlways    RestartPolicy = "Always"
)

// Defaults for the zero values of Spec's fields.
const (
	DefaultGracePeriod  = 30 * time.Second
	DefaultStartTimeout = 10 * time.Second
	DefaultProbePeriod  = 10 * time.Millisecond
)

// Spec is one pod. The zero value of each field is documented on it.
type Spec struct {
	// InitContainers run one after the other, each to completion, before
	// the sidecars and the containers start; one that exits non-zero
	// fails Start. Their hooks and probes are not used. (Kubernetes
	// interleaves them with the native sidecars in spec order; here every
	// one of them comes first.) Nil means none.
	InitContainers []Container
	// Sidecars are native sidecars: init containers with restartPolicy
	// Always (Kubernetes 1.29 and later). They start first, in order, each
	// once the previous one's StartupProbe passed; they stop after the
	// regular containers, in reverse order. Nil means none.
	Sidecars []Container
	// Containers are the regular containers, started in order after the
	// sidecars, without waiting for one another.
	Containers []Container
	// RestartPolicy applies to the regular containers while the pod is not
	// terminating. Empty means Never (a Job's pod).
	RestartPolicy RestartPolicy
	// RestartDelay is waited before a container is restarted. Zero means
	// at once (kubelet backs off from 10 seconds).
	RestartDelay time.Duration
	// GracePeriod is terminationGracePeriodSeconds, used to stop the native
	// sidecars when every regular container has finished by itself (a
	// Job). Zero means DefaultGracePeriod. Terminate takes its own.
	GracePeriod time.Duration
	// StartTimeout bounds each sidecar's StartupProbe. Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// ProbePeriod is the interval between startup probes. Zero means
	// DefaultProbePeriod.
	ProbePeriod time.Duration
	// Logf, if set, gets each event as it is recorded (t.Logf, say). It is
	// not called after Close has returned.
	Logf func(format string, args ...any)
}

// Container is one container: a process and its hooks.
type Container struct {
	// Name identifies the container in events; names must be unique.
	Name string
	// Argv is the command and its arguments; it must not be empty.
	Argv []string
	// Env is the process's whole environment. Nil means the current
	// process's environment, as with exec.Cmd.
	Env []string
	// Dir is the working directory. Empty means the current one.
	Dir string
	// PreStop is the preStop hook. Nil means none.
	PreStop *Handler
	// StartupProbe is polled after a sidecar starts, until it answers
	// 2xx or 3xx; the next container starts only then. Only sidecars use
	// it. Nil means the sidecar counts as started at once.
	StartupProbe *HTTPGet
}

// Handler is a lifecycle hook: Exec, HTTPGet, or, when both are nil, the
// sleep action (lifecycle.preStop.sleep.seconds) for Sleep.
type Handler struct {
	// Exec runs a command in the container: with its environment, in its
	// process group, so it dies with the container.
	Exec []string
	// HTTPGet sends a GET request, bounded by the grace period. The sim
	// records the status and, like kubelet, goes on to SIGTERM whatever it
	// is; only a request that cannot be made counts as failed.
	HTTPGet *HTTPGet
	// Sleep is the sleep action's duration; kubelet sleeps it out even
	// when the container has already exited.
	Sleep time.Duration
}

// HTTPGet is an httpGet hook or probe.
type HTTPGet struct {
	// Host is the host to call. Empty means 127.0.0.1 (kubelet calls the
	// pod's IP).
	Host string
	// Port is the port; it must be set.
	Port int
	// Path is the request path, with a query if any. Empty means "/".
	Path string
	// Headers are sent with the request (httpHeaders).
	Headers []Header
}

// Header is one HTTP header of an HTTPGet.
type Header struct {
	Name, Value string
}

func (h *HTTPGet) url() string {
	host := h.Host
	if host == "" {
		host = "127.0.0.1"
	}
	path := h.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	return fmt.Sprintf("http://%s:%d%s", host, h.Port, path)
}

// ErrBadSpec is wrapped by the errors Start returns for an invalid Spec.
var ErrBadSpec = errors.New("bad pod spec")

func (s *Spec) validate() error {
	seen := map[string]bool{}
	all := append(append(append([]Container(nil), s.InitContainers...), s.Sidecars...), s.Containers...)
	if len(s.Containers) == 0 {
		return fmt.Errorf("%w: no regular container", ErrBadSpec)
	}
	for _, c := range all {
		switch {
		case c.Name == "":
			return fmt.Errorf("%w: a container has no name", ErrBadSpec)
		case seen[c.Name]:
			return fmt.Errorf("%w: container name %q used twice", ErrBadSpec, c.Name)
		case len(c.Argv) == 0:
			return fmt.Errorf("%w: container %q has no command", ErrBadSpec, c.Name)
		}
		seen[c.Name] = true
		if h := c.PreStop; h != nil {
			switch {
			case h.Exec != nil && h.HTTPGet != nil:
				return fmt.Errorf("%w: container %q: preStop has both exec and httpGet", ErrBadSpec, c.Name)
			case h.Exec != nil && len(h.Exec) == 0:
				return fmt.Errorf("%w: container %q: preStop exec has no command", ErrBadSpec, c.Name)
			case h.HTTPGet != nil && h.HTTPGet.Port <= 0:
				return fmt.Errorf("%w: container %q: preStop httpGet has no port", ErrBadSpec, c.Name)
			case h.Exec == nil && h.HTTPGet == nil && h.Sleep < 0:
				return fmt.Errorf("%w: container %q: preStop sleep is negative", ErrBadSpec, c.Name)
			}
		}
		if p := c.StartupProbe; p != nil && p.Port <= 0 {
			return fmt.Errorf("%w: container %q: startup probe has no port", ErrBadSpec, c.Name)
		}
	}
	switch s.RestartPolicy {
	case "", RestartNever, RestartOnFailure, RestartAlways:
	default:
		return fmt.Errorf("%w: restart policy %q (valid: Never, OnFailure, Always)", ErrBadSpec, s.RestartPolicy)
	}
	for _, d := range []time.Duration{s.RestartDelay, s.GracePeriod, s.StartTimeout, s.ProbePeriod} {
		if d < 0 {
			return fmt.Errorf("%w: negative duration %v", ErrBadSpec, d)
		}
	}
	return nil
}
