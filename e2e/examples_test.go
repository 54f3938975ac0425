package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/lbsim"
)

// fakeEnvoy is the Envoy fake's flags for a bootstrap with the admin on
// 127.0.0.1:9901 (or a Unix socket) and a listener on 0.0.0.0:8080 with a
// health-check filter on /healthz, as the examples' envoy-config.yaml.
func fakeEnvoy(admin, upstream string) []string {
	a := []string{"-admin", admin}
	if strings.HasPrefix(admin, "/") {
		a = []string{"-admin-socket", admin}
	}
	a = append(a, "-listener", "0.0.0.0:8080", "-health-path", "/healthz")
	if upstream != "" {
		a = append(a, "-upstream", upstream)
	}
	return a
}

// load sends requests to a pod's listener while it terminates, as a load
// balancer that health-checks it would: it stops sending new requests
// deprogram after the first failed health check.
type load struct {
	cancel context.CancelFunc
	done   chan lbsim.Stats
}

func startLoad(t *testing.T, lb lbsim.LB) *load {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	l := &load{cancel: cancel, done: make(chan lbsim.Stats, 1)}
	flowing := make(chan struct{})
	go func() { l.done <- lb.Run(ctx, flowing) }()
	t.Cleanup(cancel)
	select {
	case <-flowing:
	case <-time.After(30 * time.Second):
		t.Fatal("no request went through the pod")
	}
	return l
}

func (l *load) stop() lbsim.Stats {
	l.cancel()
	return <-l.done
}

// deleteWhileServing deletes pod and waits until it is gone from the API,
// with its logs complete; it returns the pod's last state and how long
// the deletion took.
func deleteWhileServing(t *testing.T, k kube, w *podWatch, logs *podLogs, pod string, timeout time.Duration) (*Pod, time.Duration) {
	t.Helper()
	start := time.Now()
	if out, err := k.kubectl(nil, "delete", "pod", pod, "--wait=false"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	last := w.gone(t, pod, timeout)
	took := time.Since(start)
	logs.wait(t)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_TIMELINE") != "" {
			t.Logf("deleted after %v; logs:\n%s", took.Round(time.Millisecond), logs)
		}
	})
	return last, took
}

// checkExits fails unless each container ended with its wanted code.
func checkExits(t *testing.T, p *Pod, want map[string]int) {
	t.Helper()
	for name, code := range want {
		c, ok := p.container(name)
		if !ok || c.State.Terminated == nil {
			t.Errorf("container %s: no termination in the pod's last state (%+v)", name, c)
			continue
		}
		if got := c.State.Terminated.ExitCode; got != code {
			t.Errorf("container %s exit code got %d (%s), want %d", name, got, c.State.Terminated.Reason, code)
		}
	}
}

// checkEvents fails on a failed hook or a kill past the grace period.
func checkEvents(t *testing.T, k kube, pod string) {
	t.Helper()
	for _, e := range k.podEvents(t, pod) {
		if e.Reason == "FailedPreStopHook" || e.Reason == "ExceededGracePeriod" || e.Reason == "FailedKillPod" {
			t.Errorf("event %s: %s", e.Reason, e.Message)
		}
	}
}

// none fails if container's log has a line containing s.
func none(t *testing.T, logs *podLogs, container, s, why string) {
	t.Helper()
	if l, ok := logs.first(container, s); ok {
		t.Errorf("%s: %s said %q", why, container, l.text)
	}
}

// doctor runs `envoy-lifecycle doctor` in a running container with
// kubectl exec; it must find no problem.
func doctor(t *testing.T, k kube, pod, container, bin string) {
	t.Helper()
	out, err := k.kubectl(nil, "exec", pod, "-c", container, "--", bin, "doctor")
	if err != nil || !strings.Contains(out, "0 problems") {
		t.Errorf("doctor in %s/%s: %v\n%s", pod, container, err, out)
	}
}

// TestExample02EnvoySidecarDeployment deletes a pod of
// 02-envoy-sidecar-deployment while a load balancer sends it requests. As
// its README says: the app container gets SIGTERM at once and Envoy's
// preStop sleep holds Envoy's; the wrapper fails Envoy's health checks,
// waits DRAIN_DELAY, drains the inbound listener, then stops the app, then
// quits Envoy, whose container ends before its sleep and the grace period.
// No request fails, nothing is killed, both exit 0, and the termination
// message says why the wrapper exited.
func TestExample02EnvoySidecarDeployment(t *testing.T) {
	t.Parallel()
	k := namespace(t)
	v := variant{replicas: 1, envoyArgs: map[string][]string{"envoy": fakeEnvoy("127.0.0.1:9901", "127.0.0.1:8081")}}
	v.apply(t, k, "02-envoy-sidecar-deployment/envoy-config.yaml")
	v.apply(t, k, "02-envoy-sidecar-deployment/deployment.yaml")
	w := watchPods(t, k, "app.kubernetes.io/name=web")
	p := w.readyPod(t)
	name := p.Metadata.Name
	logs := followLogs(t, k, name, "app", "envoy")
	doctor(t, k, name, "app", "/usr/local/bin/envoy-lifecycle")

	// Deprogrammed within the manifest's DRAIN_DELAY (5s), as endpoints are.
	lb := startLoad(t, lbsim.LB{Target: p.Status.PodIP + ":8080", Path: "/work", HealthPath: "/healthz",
		HealthInterval: 200 * time.Millisecond, Deprogram: time.Second})
	last, took := deleteWhileServing(t, k, w, logs, name, 60*time.Second)
	stats := lb.stop()

	logs.inOrder(t,
		[2]string{"app", "termination signal; draining envoy before the app"},
		[2]string{"app", "health checks failed"},
		[2]string{"app", "waiting for endpoints to be deprogrammed"},
		[2]string{"app", "listeners draining"},
		[2]string{"app", "drain finished: reason=drained"},
		[2]string{"app", "term "}, // the app's own SIGTERM line
		[2]string{"app", "app exited: code=0"},
		[2]string{"app", "envoy told to quit"},
	)
	logs.inOrder(t,
		[2]string{"envoy", "admin POST /healthcheck/fail"},
		[2]string{"envoy", "admin POST /drain_listeners?graceful&inboundonly"},
		[2]string{"envoy", "admin POST /quitquitquit"},
	)
	none(t, logs, "envoy", "got signal", "Envoy got a signal: it should have quit before its preStop sleep ended")
	checkAppTerm(t, logs)
	checkExits(t, last, map[string]int{"app": 0, "envoy": 0})
	checkEvents(t, k, name)
	app, _ := last.container("app")
	if msg := app.State.Terminated; msg == nil || !strings.Contains(msg.Message, "envoy-lifecycle exit 0: app exited") ||
		!strings.Contains(msg.Message, "proxy stopped via envoy") {
		t.Errorf("app's termination message got %+v", msg)
	}
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
	if took >= 40*time.Second {
		t.Errorf("the pod took %v to go, past its grace period 40s", took)
	}
	t.Logf("02: deleted in %v; requests ok=%d failed=%d", took.Round(time.Millisecond), stats.OK, stats.Failed)
}

// checkAppTerm: the app got SIGTERM with nothing in flight.
func checkAppTerm(t *testing.T, logs *podLogs) {
	t.Helper()
	l, ok := logs.first("app", "term ")
	if !ok {
		t.Error("the app never got SIGTERM")
		return
	}
	tl, err := lbsim.ParseTermLine(l.text)
	if err != nil {
		t.Error(err)
		return
	}
	if tl.Inflight != 0 {
		t.Errorf("the app got SIGTERM with %d requests in flight", tl.Inflight)
	}
}
