package examples

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
	"envoy-lifecycle/lbsim"
)

// Test-sized settings of the wrap mode's drain. Production values are in
// the manifests (5s delay, 20s deadline, 10s stop timeout).
var testDrain = map[string]string{
	"ENVOY_LIFECYCLE_DRAIN_DELAY":    "200ms", // > the LB's 100ms deprogramming
	"ENVOY_LIFECYCLE_DRAIN_DEADLINE": "1s",
	"ENVOY_LIFECYCLE_STOP_TIMEOUT":   "500ms",
}

// sidecarPlay is how scenarios 02 and 06 play a wrapped web app behind
// Envoy: ports[0] the admin, ports[1] the listener, ports[2] the app.
func sidecarPlay(t *testing.T, ports []int, grace time.Duration) (play, string) {
	admin, listener, appPort := ports[0], ports[1], ports[2]
	termLog := filepath.Join(t.TempDir(), "termination-log")
	env := map[string]string{
		"ENVOY_ADMIN_API":                "http://" + local(admin),
		"ENVOY_LIFECYCLE_DRAIN_INCLUDE":  listenerStat(listener),
		"ENVOY_LIFECYCLE_GRACE_PERIOD":   strconv.Itoa(int(grace / time.Second)),
		"ENVOY_LIFECYCLE_DRAIN_DEADLINE": testDrain["ENVOY_LIFECYCLE_DRAIN_DEADLINE"],
		"ENVOY_LIFECYCLE_DRAIN_DELAY":    testDrain["ENVOY_LIFECYCLE_DRAIN_DELAY"],
		"ENVOY_LIFECYCLE_STOP_TIMEOUT":   testDrain["ENVOY_LIFECYCLE_STOP_TIMEOUT"],
	}
	return play{
		apps: map[string][]string{"app": testproc.Argv("serve", local(appPort))},
		envoy: map[string][]string{"envoy": {"-admin", local(admin), "-listener", local(listener),
			"-health-path", "/healthz", "-upstream", local(appPort)}},
		env: map[string]map[string]string{"app": env},
		addEnv: map[string]map[string]string{"app": {
			"ENVOY_LIFECYCLE_DRAIN_PERIOD":    "20ms",
			"ENVOY_LIFECYCLE_TERMINATION_LOG": termLog,
		}},
		ports: map[int]int{8080: listener, 9901: admin},
	}, termLog
}

// appTerm matches the app's own SIGTERM line (lbsim.ServeApp's).
var appTerm = step{"the app getting SIGTERM", func(e kubeletsim.Event) bool {
	return e.Kind == kubeletsim.EventOutput && e.Container == "app" && strings.HasPrefix(e.Detail, "term ")
}}

// checkAppTerm: the app got SIGTERM with nothing in flight.
func checkAppTerm(t *testing.T, p *kubeletsim.Pod) {
	t.Helper()
	e, _, ok := p.First(appTerm.pred)
	if !ok {
		t.Fatal("the app never got SIGTERM")
	}
	tl, err := lbsim.ParseTermLine(e.Detail)
	if err != nil {
		t.Fatal(err)
	}
	if tl.Inflight != 0 {
		t.Errorf("the app got SIGTERM with %d requests in flight", tl.Inflight)
	}
}

// TestEnvoySidecarDeployment plays 02-envoy-sidecar-deployment under load:
// the app container gets SIGTERM at once, Envoy's preStop sleep holds its
// SIGTERM back; the wrapper drains Envoy, then the app stops, then the
// wrapper quits Envoy, whose container ends before the sleep and the
// grace period. No request fails and nothing is SIGKILLed.
func TestEnvoySidecarDeployment(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	d := manifest(t, "02-envoy-sidecar-deployment/deployment.yaml", "Deployment")
	ports := testproc.FreePorts(t, 3)
	pl, termLog := sidecarPlay(t, ports, grace)
	pl.sleeps = map[string]time.Duration{"envoy": 1500 * time.Millisecond}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the app serving", kubeletsim.Output("app", "ready"))
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()

	// Lines of one container keep their order; across containers only
	// causally distant steps are compared.
	order(t, p, // the app container: the wrapper's log and the app's output
		is(kubeletsim.EventTerminate, ""),
		is(kubeletsim.EventTerm, "app"),
		says("app", "termination signal; draining envoy before the app"),
		says("app", "health checks failed"),
		says("app", "waiting for endpoints to be deprogrammed"),
		says("app", "listeners draining"),
		says("app", "drain finished: reason=drained"),
		appTerm,
		says("app", "app exited: code=0"),
		says("app", "envoy told to quit"),
		is(kubeletsim.EventExited, "app"),
	)
	order(t, p, // the Envoy container: what its admin API was asked
		is(kubeletsim.EventTerminate, ""),
		says("envoy", "admin POST /healthcheck/fail"),
		says("envoy", "admin POST /drain_listeners?graceful&inboundonly"),
		says("envoy", "admin POST /quitquitquit"),
		is(kubeletsim.EventExited, "envoy"),
		is(kubeletsim.EventHookEnd, "envoy"),
		is(kubeletsim.EventPodDone, ""),
	)
	none(t, p, "Envoy got SIGTERM: it should have quit before its sleep ended", kubeletsim.Is(kubeletsim.EventTerm, "envoy"))
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	checkAppTerm(t, p)
	for _, c := range []string{"app", "envoy"} {
		if code := p.MustExitCode(t, c); code != 0 {
			t.Errorf("%s exit code got %d, want 0", c, code)
		}
	}
	term, _, _ := p.First(kubeletsim.Is(kubeletsim.EventTerminate, ""))
	envoyExit, _, _ := p.First(kubeletsim.Is(kubeletsim.EventExited, "envoy"))
	if took := envoyExit.At.Sub(term.At); took >= grace {
		t.Errorf("Envoy exited %v after the deletion, past the grace period %v", took, grace)
	}
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
	msg, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatalf("no termination message: %v", err)
	}
	if !has(string(msg), "envoy-lifecycle exit 0: app exited") || !has(string(msg), "(drained, 0 connections left)") || !has(string(msg), "proxy stopped via envoy") {
		t.Errorf("termination message got %q", msg)
	}
}

// TestEnvoySidecarWithoutPreStop: the same pod without Envoy's preStop
// sleep. Envoy gets SIGTERM at t=0 and dies while the load balancer still
// sends requests: they fail. This is what the sleep is for.
func TestEnvoySidecarWithoutPreStop(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	d := manifest(t, "02-envoy-sidecar-deployment/deployment.yaml", "Deployment")
	ports := testproc.FreePorts(t, 3)
	pl, _ := sidecarPlay(t, ports, grace)
	pl.dropHook = map[string]bool{"envoy": true}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the app serving", kubeletsim.Output("app", "ready"))
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()
	order(t, p, is(kubeletsim.EventTerm, "envoy"), is(kubeletsim.EventExited, "envoy"))
	if stats.Failed == 0 {
		t.Errorf("no request failed (ok=%d) although Envoy died first", stats.OK)
	}
}
