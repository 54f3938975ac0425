package examples

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
)

var update = flag.Bool("update", false, "rewrite 07-istio-inject/out-*.yaml with the built binary's inject")

const injectDir = "07-istio-inject"

// injectRuns are the inject commands whose outputs 07-istio-inject shows.
var injectRuns = []struct {
	out  string
	args []string
}{
	{"out-config.yaml", []string{"-c", "hooks.config.yaml", "in-bookinfo.yaml"}},
	{"out-preset-istio.yaml", []string{"--preset", "istio", "in-bookinfo.yaml"}},
	{"out-preset-envoy.yaml", []string{"--preset", "envoy", "in-envoy.yaml"}},
	{"out-preset-shutdown-manager.yaml", []string{"--preset", "shutdown-manager", "in-ingress.yaml"}},
}

// TestInjectOutputsAreCurrent runs the built binary's inject on each input
// of 07-istio-inject and compares with the output kept there (-update
// rewrites them). Running it again on an output changes nothing.
func TestInjectOutputsAreCurrent(t *testing.T) {
	t.Parallel()
	for _, r := range injectRuns {
		t.Run(r.out, func(t *testing.T) {
			t.Parallel()
			flags := r.args[: len(r.args)-1 : len(r.args)-1] // without the input; appends copy
			got, notes := runInject(t, append(flags, "-o", "-", r.args[len(r.args)-1])...)
			path := filepath.Join(injectDir, r.out)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("notes:\n%s", notes)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("inject %q gives an output other than %s (go test ./examples -run TestInjectOutputsAreCurrent -update)", r.args, path)
			}
			again, _ := runInject(t, append(flags, "-o", "-", r.out)...)
			if !bytes.Equal(again, want) {
				t.Errorf("inject %q on %s is not idempotent", flags, r.out)
			}
		})
	}
}

// runInject runs envoy-lifecycle inject in 07-istio-inject; it must exit 0.
func runInject(t *testing.T, args ...string) (stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command(testproc.Build(t), append([]string{"inject"}, args...)...)
	cmd.Dir = injectDir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("inject %q: %v\n%s", args, err, errb.String())
	}
	return out.Bytes(), errb.Bytes()
}

// injectedIstioPlay plays a workload of out-preset-istio.yaml: the init
// container installs the built binary into the pod's volume, the app runs
// that copy, and istio-proxy (Istio's sidecar, merged with inject's stub and
// its preStop sleep) is the Envoy fake with its pilot-agent port.
func injectedIstioPlay(t *testing.T, container string, appArgv []string, upstream string) (play, []int) {
	ports := testproc.FreePorts(t, 3)
	admin, listener, agent := ports[0], ports[1], ports[2]
	fake := []string{"-admin", local(admin), "-listener", local(listener), "-pilot-agent", local(agent), "-health-path", "/healthz"}
	if upstream != "" {
		fake = append(fake, "-upstream", upstream)
	}
	return play{
		apps:  map[string][]string{container: appArgv},
		envoy: map[string][]string{"istio-proxy": fake},
		env: map[string]map[string]string{container: {
			"ENVOY_ADMIN_API": "http://" + local(admin),
			"ISTIO_QUIT_API":  "http://" + local(agent),
		}},
		addEnv: map[string]map[string]string{container: {
			"ENVOY_LIFECYCLE_DRAIN_DELAY":    testDrain["ENVOY_LIFECYCLE_DRAIN_DELAY"],
			"ENVOY_LIFECYCLE_DRAIN_DEADLINE": testDrain["ENVOY_LIFECYCLE_DRAIN_DEADLINE"],
			"ENVOY_LIFECYCLE_STOP_TIMEOUT":   testDrain["ENVOY_LIFECYCLE_STOP_TIMEOUT"],
			"ENVOY_LIFECYCLE_DRAIN_PERIOD":   "20ms",
		}},
		sleeps: map[string]time.Duration{"istio-proxy": 1500 * time.Millisecond}, // 28s in the output
	}, ports
}

// TestInjectedIstioJob plays the Job of out-preset-istio.yaml: the binary is
// installed by the init container, the app runs under it, and when the app
// ends pilot-agent is told to quit, so the pod completes.
func TestInjectedIstioJob(t *testing.T) {
	t.Parallel()
	d := manifest(t, filepath.Join(injectDir, "out-preset-istio.yaml"), "Job")
	pl, _ := injectedIstioPlay(t, "migrate", testproc.Argv("exit", "0"), "")
	spec := pl.spec(t, d)
	if len(spec.InitContainers) != 1 || spec.Containers[0].Argv[0] == testproc.Build(t) {
		t.Fatalf("the app does not run the installed copy: init %d, argv %q", len(spec.InitContainers), spec.Containers[0].Argv)
	}
	p := startPod(t, spec)
	waitDone(t, p)
	order(t, p,
		says("envoy-lifecycle-install", "installed"),
		is(kubeletsim.EventExited, "envoy-lifecycle-install"),
		is(kubeletsim.EventStarted, "migrate"),
		says("migrate", "app exited: code=0"),
		says("migrate", "istio proxy told to quit"),
		is(kubeletsim.EventExited, "migrate"),
		is(kubeletsim.EventPodDone, ""),
	)
	order(t, p, says("istio-proxy", "pilot-agent POST /quitquitquit"), is(kubeletsim.EventExited, "istio-proxy"))
	if got := p.Phase(); got != kubeletsim.PhaseSucceeded {
		t.Errorf("phase got %s, want Succeeded", got)
	}
	none(t, p, "a signal was needed", kubeletsim.Is(kubeletsim.EventTerm, ""))
}

// TestInjectedIstioDeployment plays the Deployment of out-preset-istio.yaml
// under load: the istio-proxy stub's preStop sleep keeps the sidecar up
// while the wrapper drains it and stops the app, then the wrapper stops it
// through pilot-agent, before the sleep ends. No request fails.
func TestInjectedIstioDeployment(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	d := manifest(t, filepath.Join(injectDir, "out-preset-istio.yaml"), "Deployment")
	appPort := testproc.FreePorts(t, 1)[0]
	pl, ports := injectedIstioPlay(t, "reviews", testproc.Argv("serve", local(appPort)), local(appPort))
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the app serving", kubeletsim.Output("reviews", "ready"))
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()
	order(t, p,
		is(kubeletsim.EventTerm, "reviews"),
		says("reviews", "termination signal; draining envoy before the app"),
		says("reviews", "drain finished: reason=drained"),
		says("reviews", "app exited: code=0"),
		says("reviews", "istio proxy told to quit"),
		is(kubeletsim.EventExited, "reviews"),
	)
	order(t, p,
		is(kubeletsim.EventTerminate, ""),
		says("istio-proxy", "admin POST /healthcheck/fail"),
		says("istio-proxy", "admin POST /drain_listeners?graceful&inboundonly"),
		says("istio-proxy", "pilot-agent POST /quitquitquit"),
		is(kubeletsim.EventExited, "istio-proxy"),
		is(kubeletsim.EventHookEnd, "istio-proxy"),
	)
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	none(t, p, "istio-proxy got SIGTERM: it should have quit before its sleep ended", kubeletsim.Is(kubeletsim.EventTerm, "istio-proxy"))
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
}

// TestInjectedShutdownManagerRestartSafety plays the Deployment of
// out-preset-shutdown-manager.yaml: the drain's state file and the ready
// file land on the emptyDir inject added, so a manager started again on
// that volume (a container restarted alone keeps its pod's emptyDir) finds
// the state file and restores Envoy's health checks.
func TestInjectedShutdownManagerRestartSafety(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	file := filepath.Join(injectDir, "out-preset-shutdown-manager.yaml")
	d := manifest(t, file, "Deployment")
	ports := testproc.FreePorts(t, 3)
	admin, listener, mgr := ports[0], ports[1], ports[2]
	pl := play{
		envoy: map[string][]string{"envoy": {"-admin", local(admin), "-listener", local(listener),
			"-health-path", "/healthz", "-upstream", startBackend(t)}},
		addEnv: map[string]map[string]string{"shutdown-manager": {
			// The manifest leaves these to the manager's defaults.
			"PORT":                    strconv.Itoa(mgr),
			"ENVOY_ADMIN_API":         "http://" + local(admin),
			"SHUTDOWN_MANAGER_DELAY":  "200ms", // 5s by default
			"SHUTDOWN_MANAGER_PERIOD": "20ms",
		}},
		ports: map[int]int{8090: mgr, 8080: listener},
	}
	spec := pl.spec(t, d)
	files := map[string]string{}
	for _, c := range spec.Containers {
		if c.Name != "shutdown-manager" {
			continue
		}
		for _, f := range []string{"--state-file", "--ready-file"} {
			v, ok := flagValue(c.Argv, f)
			if !ok || !filepath.IsAbs(v) || strings.HasPrefix(v, "/shutdown/") {
				t.Fatalf("the manager's %s is %q, want a path on a volume (argv %q)", f, v, c.Argv)
			}
			files[f] = v
		}
	}
	if len(files) != 2 {
		t.Fatal("no shutdown-manager container")
	}

	p := startPod(t, spec)
	p.MustWait(t, "the manager listening", kubeletsim.Output("shutdown-manager", `"listening"`))
	waitEnvoy(t, p, "envoy")
	p.Terminate(grace)
	for _, c := range []string{"envoy", "shutdown-manager"} {
		if e := p.MustWait(t, c+"'s hook", kubeletsim.Is(kubeletsim.EventHookEnd, c)); e.Code != http.StatusOK {
			t.Errorf("%s's hook answered %q, want 200", c, e.Detail)
		}
	}
	order(t, p, says("envoy", "admin POST /healthcheck/fail"), is(kubeletsim.EventExited, "envoy"))
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	for f, path := range files {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s after the drain: %v", f, err)
		}
	}

	// The same containers on the same volume: the manager finds the state
	// file and undoes the drain.
	again := startPod(t, spec)
	again.MustWait(t, "the health checks restored", kubeletsim.Output("shutdown-manager", `"health checks restored"`))
	again.MustWait(t, "envoy asked to pass health checks", kubeletsim.Output("envoy", "admin POST /healthcheck/ok"))
	// Lines of different containers are recorded as they are read, so
	// Envoy's line is not ordered against the manager's: the manager logs
	// "restored" only after Envoy's 200.
	order(t, again,
		says("shutdown-manager", `"found a drain from an earlier run; this pod is not terminating, undoing it"`),
		says("shutdown-manager", `"health checks restored"`),
	)
	again.Terminate(grace)
}
