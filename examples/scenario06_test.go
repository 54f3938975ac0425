package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
)

// TestNativeSidecarDeployment plays 06-native-sidecars/deployment.yaml
// under load: Envoy is a native sidecar, started first (its startup probe
// gates the app) and stopped last; the app container gets SIGTERM at t=0
// and the wrapper drains Envoy before the app stops; the wrapper leaves
// Envoy alone (NEVER_KILL_ENVOY) and the kubelet sends Envoy SIGTERM only
// once the app container has exited. No request fails.
func TestNativeSidecarDeployment(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	d := manifest(t, "06-native-sidecars/deployment.yaml", "Deployment")
	ports := testproc.FreePorts(t, 3)
	pl, termLog := sidecarPlay(t, ports, grace)
	p := startPod(t, pl.spec(t, d))
	order(t, p, is(kubeletsim.EventProbed, "envoy"), is(kubeletsim.EventStarted, "app"))
	p.MustWait(t, "the app serving", kubeletsim.Output("app", "ready"))
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()

	order(t, p,
		is(kubeletsim.EventTerminate, ""),
		is(kubeletsim.EventTerm, "app"),
		says("app", "termination signal; draining envoy before the app"),
		says("app", "listeners draining"),
		says("app", "drain finished: reason=drained"),
		appTerm,
		says("app", "not stopping the proxy"),
		is(kubeletsim.EventExited, "app"),
		is(kubeletsim.EventTerm, "envoy"),
		is(kubeletsim.EventExited, "envoy"),
		is(kubeletsim.EventPodDone, ""),
	)
	order(t, p,
		says("envoy", "admin POST /healthcheck/fail"),
		says("envoy", "admin POST /drain_listeners?graceful&inboundonly"),
		says("envoy", "got signal terminated"),
	)
	none(t, p, "the wrapper quit a native sidecar", kubeletsim.Output("envoy", "/quitquitquit"))
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	checkAppTerm(t, p)
	if st, _ := p.Status("envoy"); st.Restarts != 0 {
		t.Errorf("Envoy restarted %d times", st.Restarts)
	}
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
	if msg, err := os.ReadFile(termLog); err != nil || !has(string(msg), "proxy left running: never kill is set") {
		t.Errorf("termination message got %q (%v)", msg, err)
	}
}

// TestNativeSidecarWithoutWrapper: the same pod with the app run directly.
// The kubelet still orders the sidecar, but the app gets SIGTERM at t=0
// while the load balancer sends requests: they fail. The inbound drain is
// what the wrapper adds.
func TestNativeSidecarWithoutWrapper(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	d := manifest(t, "06-native-sidecars/deployment.yaml", "Deployment")
	ports := testproc.FreePorts(t, 3)
	pl, _ := sidecarPlay(t, ports, grace)
	pl.unwrap = map[string]bool{"app": true}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the app serving", kubeletsim.Output("app", "ready"))
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()
	order(t, p, is(kubeletsim.EventTerm, "app"), appTerm, is(kubeletsim.EventExited, "app"), is(kubeletsim.EventTerm, "envoy"))
	none(t, p, "Envoy was drained", kubeletsim.Output("envoy", "/healthcheck/fail"))
	if stats.Failed == 0 {
		t.Errorf("no request failed (ok=%d) although the app stopped first", stats.OK)
	}
}

// TestNativeSidecarJob plays 06-native-sidecars/job.yaml: when the app
// exits the kubelet stops the sidecar and the pod completes, without any
// quit call. The wrapper passes the app's code on, 128+n for a signal.
func TestNativeSidecarJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		app   []string
		code  int
		phase kubeletsim.Phase
	}{
		{"success", testproc.Argv("exit", "0"), 0, kubeletsim.PhaseSucceeded},
		{"failure", testproc.Argv("exit", "3"), 3, kubeletsim.PhaseFailed},
		{"killed", testproc.Argv("die-by-kill"), 137, kubeletsim.PhaseFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := manifest(t, "06-native-sidecars/job.yaml", "Job")
			ports := testproc.FreePorts(t, 2)
			termLog := filepath.Join(t.TempDir(), "termination-log")
			pl := play{
				apps:   map[string][]string{"app": tc.app},
				envoy:  map[string][]string{"envoy": {"-admin", local(ports[0]), "-listener", local(ports[1]), "-health-path", "/healthz"}},
				env:    map[string]map[string]string{"app": {"ENVOY_ADMIN_API": "http://" + local(ports[0])}},
				addEnv: map[string]map[string]string{"app": {"ENVOY_LIFECYCLE_TERMINATION_LOG": termLog}},
				ports:  map[int]int{8080: ports[1]},
			}
			p := startPod(t, pl.spec(t, d))
			waitDone(t, p)
			order(t, p,
				is(kubeletsim.EventProbed, "envoy"),
				is(kubeletsim.EventStarted, "app"),
				is(kubeletsim.EventExited, "app"),
				step{"the kubelet stopping the sidecar", func(e kubeletsim.Event) bool {
					return e.Kind == kubeletsim.EventTerminate && strings.Contains(e.Detail, "regular containers completed")
				}},
				is(kubeletsim.EventTerm, "envoy"),
				is(kubeletsim.EventExited, "envoy"),
				is(kubeletsim.EventPodDone, ""),
			)
			none(t, p, "the wrapper quit a native sidecar", kubeletsim.Output("envoy", "/quitquitquit"))
			if got := p.MustExitCode(t, "app"); got != tc.code {
				t.Errorf("app exit code got %d, want %d", got, tc.code)
			}
			if got := p.Phase(); got != tc.phase {
				t.Errorf("phase got %s, want %s", got, tc.phase)
			}
			msg, err := os.ReadFile(termLog)
			if err != nil || !strings.HasPrefix(string(msg), "envoy-lifecycle exit "+itoa(tc.code)+": app exited") || !has(string(msg), "proxy left running: never kill is set") {
				t.Errorf("termination message got %q (%v)", msg, err)
			}
			t.Logf("termination message: %s", msg)
		})
	}
}
