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

// istioPlay plays a Job of 01-istio-job-cronjob: the manifest's app
// container, wrapped, and the istio-proxy container Istio's injector
// would add, played by the Envoy fake with its pilot-agent status port.
func istioPlay(t *testing.T, appArgv []string) play {
	ports := testproc.FreePorts(t, 3)
	admin, listener, agent := ports[0], ports[1], ports[2]
	return play{
		apps: map[string][]string{"app": appArgv},
		env: map[string]map[string]string{"app": {
			"ENVOY_ADMIN_API": "http://" + local(admin),
			"ISTIO_QUIT_API":  "http://" + local(agent),
		}},
		addEnv: map[string]map[string]string{"app": {
			"ENVOY_LIFECYCLE_TERMINATION_LOG": filepath.Join(t.TempDir(), "termination-log"),
		}},
		extra: []kubeletsim.Container{{
			Name: "istio-proxy",
			Argv: []string{envoyfake(t), "-admin", local(admin), "-listener", local(listener), "-pilot-agent", local(agent)},
			Env:  testproc.BareEnv(),
		}},
	}
}

// TestIstioJobCompletes plays job.yaml (restartPolicy Never): whatever
// the app's exit code, the wrapper stops istio-proxy through pilot-agent
// and the pod completes, Succeeded or Failed, so the Job controller sees
// it and retries a failure with a new pod (backoffLimit).
func TestIstioJobCompletes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		code  string
		phase kubeletsim.Phase
		want  int
	}{
		{"success", "0", kubeletsim.PhaseSucceeded, 0},
		{"failure", "3", kubeletsim.PhaseFailed, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := manifest(t, "01-istio-job-cronjob/job.yaml", "Job")
			pl := istioPlay(t, testproc.Argv("exit", tc.code))
			p := startPod(t, pl.spec(t, d))
			waitDone(t, p)
			order(t, p,
				says("app", "envoy live"),
				says("app", "app started"),
				says("app", "app exited: code="+tc.code),
				says("app", "istio proxy told to quit"),
				is(kubeletsim.EventExited, "app"),
				is(kubeletsim.EventPodDone, ""),
			)
			order(t, p,
				says("istio-proxy", "pilot-agent POST /quitquitquit"),
				is(kubeletsim.EventExited, "istio-proxy"),
				is(kubeletsim.EventPodDone, ""),
			)
			if got := p.Phase(); got != tc.phase {
				t.Errorf("phase got %s, want %s", got, tc.phase)
			}
			if got := p.MustExitCode(t, "app"); got != tc.want {
				t.Errorf("app exit code got %d, want %d", got, tc.want)
			}
			if got := p.MustExitCode(t, "istio-proxy"); got != 0 {
				t.Errorf("istio-proxy exit code got %d, want 0", got)
			}
			none(t, p, "a signal was needed", kubeletsim.Is(kubeletsim.EventTerm, ""))
			msg, err := os.ReadFile(pl.addEnv["app"]["ENVOY_LIFECYCLE_TERMINATION_LOG"])
			if err != nil || !strings.HasPrefix(string(msg), "envoy-lifecycle exit "+tc.code+": app exited") || !has(string(msg), "proxy stopped via istio (gone)") {
				t.Errorf("termination message got %q (%v)", msg, err)
			}
			t.Logf("termination message: %s", msg)
		})
	}
}

// TestIstioCronJobRetriesInThePod plays cronjob.yaml (restartPolicy
// OnFailure, NEVER_KILL_ISTIO_ON_FAILURE=true): the failed run leaves the
// proxy up, the kubelet restarts the app container next to it, the retry
// succeeds and only then is the proxy stopped.
func TestIstioCronJobRetriesInThePod(t *testing.T) {
	t.Parallel()
	d := manifest(t, "01-istio-job-cronjob/cronjob.yaml", "CronJob")
	p := startPod(t, istioPlay(t, testproc.Argv("fail-once", filepath.Join(t.TempDir(), "failed"))).spec(t, d))
	waitDone(t, p)
	order(t, p,
		says("app", "first run: failing"),
		says("app", "NEVER_KILL_ISTIO_ON_FAILURE and app failed"),
		is(kubeletsim.EventExited, "app"),
		step{"the app container restarted", func(e kubeletsim.Event) bool {
			return e.Kind == kubeletsim.EventStarted && e.Container == "app" && has(e.Detail, "restart 1")
		}},
		says("app", "second run: ok"),
		says("app", "istio proxy told to quit"),
		is(kubeletsim.EventPodDone, ""),
	)
	order(t, p,
		says("istio-proxy", "pilot-agent POST /quitquitquit"),
		is(kubeletsim.EventExited, "istio-proxy"),
		is(kubeletsim.EventPodDone, ""),
	)
	if got := p.Phase(); got != kubeletsim.PhaseSucceeded {
		t.Errorf("phase got %s, want Succeeded", got)
	}
	if st, _ := p.Status("app"); st.Restarts != 1 {
		t.Errorf("app restarts got %d, want 1", st.Restarts)
	}
	if st, _ := p.Status("istio-proxy"); st.Restarts != 0 {
		t.Errorf("istio-proxy restarted %d times", st.Restarts)
	}
}

// TestNeverKillOnFailureWithRestartNever is the mistake the README warns
// about: NEVER_KILL_ISTIO_ON_FAILURE=true with restartPolicy Never. The
// failed app leaves istio-proxy running, so the pod never completes and
// the Job never retries (until activeDeadlineSeconds).
func TestNeverKillOnFailureWithRestartNever(t *testing.T) {
	t.Parallel()
	d := manifest(t, "01-istio-job-cronjob/job.yaml", "Job")
	pl := istioPlay(t, testproc.Argv("exit", "3"))
	pl.addEnv["app"]["NEVER_KILL_ISTIO_ON_FAILURE"] = "true"
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the app exiting", kubeletsim.Is(kubeletsim.EventExited, "app"))
	if st, _ := p.Status("istio-proxy"); !st.Running {
		t.Error("istio-proxy stopped: NEVER_KILL_ISTIO_ON_FAILURE was ignored")
	}
	if got := p.Phase(); got != kubeletsim.PhaseRunning {
		t.Errorf("phase got %s, want Running (stuck)", got)
	}
	none(t, p, "the proxy was told to quit", kubeletsim.Output("app", "istio proxy told to quit"))
}

// TestOnFailureWithoutNeverKill is the other mistake: restartPolicy
// OnFailure without NEVER_KILL_ISTIO_ON_FAILURE. The failed run stops the
// proxy, which OnFailure does not restart (it exited 0); the retried app
// then waits for a proxy that is gone and gives up with 69.
func TestOnFailureWithoutNeverKill(t *testing.T) {
	t.Parallel()
	d := manifest(t, "01-istio-job-cronjob/cronjob.yaml", "CronJob")
	pl := istioPlay(t, testproc.Argv("fail-once", filepath.Join(t.TempDir(), "failed")))
	pl.env["app"]["NEVER_KILL_ISTIO_ON_FAILURE"] = "false"
	pl.env["app"]["QUIT_WITHOUT_ENVOY_TIMEOUT"] = "300ms"
	spec := pl.spec(t, d)
	spec.RestartDelay = 50 * time.Millisecond
	p := startPod(t, spec)
	p.MustWait(t, "the retry giving up", func(e kubeletsim.Event) bool {
		return e.Kind == kubeletsim.EventExited && e.Container == "app" && e.Code == 69
	})
	order(t, p, says("app", "first run: failing"), says("app", "istio proxy told to quit"), says("app", "envoy not live; giving up"))
	order(t, p, says("istio-proxy", "pilot-agent POST /quitquitquit"), is(kubeletsim.EventExited, "istio-proxy"))
	// The retry waited QUIT_WITHOUT_ENVOY_TIMEOUT (300ms) for the proxy
	// that had exited: far apart enough to compare across containers.
	order(t, p, is(kubeletsim.EventExited, "istio-proxy"), says("app", "envoy not live; giving up"))
	none(t, p, "the retry ran the app", kubeletsim.Output("app", "second run: ok"))
}
