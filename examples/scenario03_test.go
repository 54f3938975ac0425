package examples

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
)

// startBackend is the service behind an ingress Envoy.
func startBackend(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// managerPlay is how scenarios 03 and 04 play an ingress Envoy (the fake)
// and its shutdown manager: ports[0] the admin, ports[1] the listener,
// ports[2] the manager. The admin is a Unix socket when sock is set.
func managerPlay(t *testing.T, file string, ports []int, sock string) play {
	admin, listener, mgr := ports[0], ports[1], ports[2]
	adminFlags, adminURL := []string{"-admin", local(admin)}, "http://"+local(admin)
	if sock != "" {
		adminFlags, adminURL = []string{"-admin-socket", sock}, "unix://"+sock
	}
	return play{
		envoy: map[string][]string{"envoy": append(adminFlags, "-listener", local(listener),
			"-health-path", "/healthz", "-upstream", startBackend(t))},
		flags: map[string]map[string]string{"shutdown-manager": {
			"--port":        strconv.Itoa(mgr),
			"--envoy-admin": adminURL,
		}},
		ports:   map[int]int{8090: mgr, 8080: listener},
		secrets: secrets(t, file),
	}
}

// TestIngressShutdownManager plays 03-envoy-ingress-shutdown-manager under
// load: both preStop hooks start at once; Envoy's /shutdown drains it
// (health checks failed, listeners drained, connections polled) while the
// manager's /waitforshutdown waits; when the drain is done both hooks
// return and both containers get SIGTERM. No request fails, nothing is
// SIGKILLed.
func TestIngressShutdownManager(t *testing.T) {
	t.Parallel()
	const grace = 3 * time.Second
	file := "03-envoy-ingress-shutdown-manager/deployment.yaml"
	d := manifest(t, file, "Deployment")
	ports := testproc.FreePorts(t, 3)
	dir := t.TempDir()
	pl := managerPlay(t, file, ports, "")
	for k, v := range map[string]string{
		"--delay":      "200ms", // > the LB's 100ms deprogramming; 5s in the manifest
		"--period":     "20ms",
		"--state-file": filepath.Join(dir, "state"),
		"--ready-file": filepath.Join(dir, "ok"),
	} {
		pl.flags["shutdown-manager"][k] = v
	}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the manager listening", kubeletsim.Output("shutdown-manager", `"listening"`))
	waitEnvoy(t, p, "envoy")
	lb := startLoad(t, ports[1], "/healthz")

	p.Terminate(grace)
	stats := lb.stop()

	envoyHook := p.MustWait(t, "Envoy's hook", kubeletsim.Is(kubeletsim.EventHookEnd, "envoy"))
	mgrHook := p.MustWait(t, "the manager's hook", kubeletsim.Is(kubeletsim.EventHookEnd, "shutdown-manager"))
	if envoyHook.Code != http.StatusOK || mgrHook.Code != http.StatusOK {
		t.Errorf("hooks answered %q and %q, want 200 both", envoyHook.Detail, mgrHook.Detail)
	}
	// Both hooks were running at once.
	order(t, p, is(kubeletsim.EventHookStart, "envoy"), is(kubeletsim.EventHookEnd, "envoy"))
	order(t, p, is(kubeletsim.EventHookStart, "shutdown-manager"), is(kubeletsim.EventHookEnd, "envoy"))
	order(t, p, is(kubeletsim.EventHookStart, "envoy"), is(kubeletsim.EventHookEnd, "shutdown-manager"))
	// Lines of one process keep their order, and a step the sim takes is
	// recorded before what it causes; a line is not compared with a later
	// step of another process, whose record may come first.
	order(t, p,
		is(kubeletsim.EventHookStart, "envoy"),
		says("envoy", "admin POST /healthcheck/fail"),
		says("envoy", "admin POST /drain_listeners?graceful"),
		is(kubeletsim.EventExited, "envoy"),
	)
	order(t, p, is(kubeletsim.EventHookEnd, "envoy"), is(kubeletsim.EventTerm, "envoy"), is(kubeletsim.EventExited, "envoy"))
	order(t, p, // the two requests arrive in either order
		says("shutdown-manager", `"waiting for a drain to start and finish"`),
		says("shutdown-manager", `"drain finished"`),
	)
	order(t, p,
		says("shutdown-manager", `"drain starting"`),
		says("shutdown-manager", `"drain finished"`),
		says("shutdown-manager", `"exiting"`),
	)
	order(t, p,
		is(kubeletsim.EventHookEnd, "shutdown-manager"),
		is(kubeletsim.EventTerm, "shutdown-manager"),
		says("shutdown-manager", `"signal; terminating"`),
		is(kubeletsim.EventExited, "shutdown-manager"),
	)
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	for _, c := range []string{"envoy", "shutdown-manager"} {
		if code := p.MustExitCode(t, c); code != 0 {
			t.Errorf("%s exit code got %d, want 0", c, code)
		}
	}
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
	if _, err := os.Stat(filepath.Join(dir, "ok")); err != nil {
		t.Errorf("no ready file: %v", err)
	}
}
