package examples

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
	"envoy-lifecycle/lbsim"
)

// socketDir is a short directory for a Unix socket (paths are limited to
// about 100 bytes, and t.TempDir's can be longer).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "el-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// checkManagerDrain is what scenario 04's layouts share: the hooks ran at
// once, Envoy's health checks were failed but its listeners were not
// drained, both containers got SIGTERM only after their hooks, the ready
// file exists, no request failed and nothing was SIGKILLed.
func checkManagerDrain(t *testing.T, p *kubeletsim.Pod, dir string, stats lbsim.Stats) {
	t.Helper()
	order(t, p, is(kubeletsim.EventHookStart, "envoy"), is(kubeletsim.EventHookEnd, "shutdown-manager"))
	order(t, p, is(kubeletsim.EventHookStart, "shutdown-manager"), is(kubeletsim.EventHookEnd, "envoy"))
	for _, c := range []string{"envoy", "shutdown-manager"} {
		order(t, p, is(kubeletsim.EventHookEnd, c), is(kubeletsim.EventTerm, c), is(kubeletsim.EventExited, c))
		if code := p.MustExitCode(t, c); code != 0 {
			t.Errorf("%s exit code got %d, want 0", c, code)
		}
	}
	order(t, p, is(kubeletsim.EventTerminate, ""), says("envoy", "admin POST /healthcheck/fail"), is(kubeletsim.EventExited, "envoy"))
	none(t, p, "the listeners were drained", kubeletsim.Output("envoy", "/drain_listeners"))
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	if _, err := os.Stat(filepath.Join(dir, "ok")); err != nil {
		t.Errorf("no ready file: %v", err)
	}
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
}

// TestMarin3rLayout plays 04-contour-style-ready-file/marin3r.yaml under
// load: Envoy's /shutdown and the manager's /drain join one drain over the
// admin's Unix socket; it writes the ready file and both return.
func TestMarin3rLayout(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	file := "04-contour-style-ready-file/marin3r.yaml"
	d := manifest(t, file, "Deployment")
	ports := testproc.FreePorts(t, 3)
	dir := socketDir(t)
	pl := managerPlay(t, file, ports, filepath.Join(dir, "admin.sock"))
	for k, v := range map[string]string{
		"--check-drain-delay":    "200ms", // 15s in the manifest
		"--check-drain-interval": "20ms",
		"--ready-file":           filepath.Join(dir, "ok"),
		"--state-file":           filepath.Join(dir, "state"),
	} {
		pl.flags["shutdown-manager"][k] = v
	}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the manager listening", kubeletsim.Output("shutdown-manager", `"listening"`))
	waitEnvoy(t, p, "envoy")
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()
	checkManagerDrain(t, p, dir, stats)
	if e, _, _ := p.First(kubeletsim.Is(kubeletsim.EventHookEnd, "envoy")); e.Code != http.StatusOK {
		t.Errorf("Envoy's /shutdown answered %q, want 200", e.Detail)
	}
	order(t, p, // one drain, joined by the second hook
		says("shutdown-manager", `"drain starting"`),
		says("shutdown-manager", `"joining the drain in progress"`),
		says("shutdown-manager", `"ready file written"`),
	)
	if e, _, _ := p.First(kubeletsim.Is(kubeletsim.EventHookEnd, "shutdown-manager")); e.Code != http.StatusOK {
		t.Errorf("the manager's /drain answered %q, want 200", e.Detail)
	}
}

// TestContourLayout plays 04-contour-style-ready-file/contour.yaml under
// load: the manager's exec hook runs `envoy-lifecycle drain` over the
// admin's Unix socket and writes the ready file, which Envoy's /shutdown
// (with --ready-file-only) waits for.
func TestContourLayout(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	file := "04-contour-style-ready-file/contour.yaml"
	d := manifest(t, file, "Deployment")
	ports := testproc.FreePorts(t, 3)
	dir := socketDir(t)
	pl := managerPlay(t, file, ports, filepath.Join(dir, "admin.sock"))
	for k, v := range map[string]string{
		"--check-delay":    "200ms", // 10s in the manifest
		"--check-interval": "20ms",
		"--ready-file":     filepath.Join(dir, "ok"),
		"--state-file":     filepath.Join(dir, "state"),
	} {
		pl.flags["shutdown-manager"][k] = v
	}
	pl.addEnv = map[string]map[string]string{"shutdown-manager": {
		// /proc/1 is this machine's init here, not the container's.
		"SHUTDOWN_MANAGER_LOG_TO_PID1": "false",
		// Longer than the test: the manager never looks again by itself,
		// so only its last look on SIGTERM, which follows the drain hook
		// at once, can find the file (the race the manifest's 1s loses
		// now and then).
		"SHUTDOWN_MANAGER_READY_FILE_INTERVAL": "1m",
	}}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the manager listening", kubeletsim.Output("shutdown-manager", `"listening"`))
	waitEnvoy(t, p, "envoy")
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()
	checkManagerDrain(t, p, dir, stats)
	hook := func(s string) step {
		return step{"the drain hook saying " + s, func(e kubeletsim.Event) bool {
			return e.Kind == kubeletsim.EventOutput && e.Stream == kubeletsim.StreamPreStop && strings.Contains(e.Detail, s)
		}}
	}
	order(t, p,
		is(kubeletsim.EventHookStart, "shutdown-manager"),
		hook(`"health checks failed"`),
		hook(`"drain finished"`),
		hook(`"ready file written"`),
		is(kubeletsim.EventHookEnd, "shutdown-manager"),
	)
	if e, _, _ := p.First(kubeletsim.Is(kubeletsim.EventHookEnd, "shutdown-manager")); e.Code != 0 {
		t.Errorf("envoy-lifecycle drain exited %d, want 0", e.Code)
	}
	// Envoy's hook returns 200 once the file is there: the manager's
	// SIGTERM makes it look one last time before it answers its waiters.
	// Envoy's SIGTERM comes after the drain.
	if e, _, _ := p.First(kubeletsim.Is(kubeletsim.EventHookEnd, "envoy")); e.Code != http.StatusOK {
		t.Errorf("Envoy's /shutdown answered %q, want 200", e.Detail)
	}
	order(t, p, hook(`"ready file written"`), is(kubeletsim.EventHookEnd, "envoy"))
	none(t, p, "the manager drained too", kubeletsim.Output("shutdown-manager", `"drain starting"`))
}
