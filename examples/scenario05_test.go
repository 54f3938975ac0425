package examples

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
	"envoy-lifecycle/lbsim"
)

// TestNLBDirectHealthChecks plays 05-nlb-direct-health-checks: a load
// balancer that sends traffic to Envoy and health-checks the shutdown
// manager's catch-all path. The manager gets SIGTERM at once and fails the
// checks; Envoy's /waitz hook holds Envoy until the checks have stopped
// for INTERVAL, then COOLDOWN; only then does Envoy get SIGTERM. No request
// fails and nothing is SIGKILLed.
func TestNLBDirectHealthChecks(t *testing.T) {
	t.Parallel()
	const (
		grace    = 3 * time.Second
		interval = 200 * time.Millisecond // 15s in the manifest
		cooldown = 200 * time.Millisecond // 30s in the manifest
	)
	file := "05-nlb-direct-health-checks/deployment.yaml"
	d := manifest(t, file, "Deployment")
	ports := testproc.FreePorts(t, 3)
	admin, listener, mgr := ports[0], ports[1], ports[2]
	pl := play{
		envoy: map[string][]string{"envoy": {"-admin", local(admin), "-listener", local(listener), "-upstream", startBackend(t)}},
		flags: map[string]map[string]string{"shutdown-manager": {
			"--port":        itoa(mgr),
			"--envoy-admin": "http://" + local(admin),
		}},
		env: map[string]map[string]string{"shutdown-manager": {
			"INTERVAL": interval.String(),
			"COOLDOWN": cooldown.String(),
		}},
		// Test plumbing: keep the manager's default files out of /tmp.
		addEnv: map[string]map[string]string{"shutdown-manager": {
			"SHUTDOWN_MANAGER_READY_FILE": filepath.Join(t.TempDir(), "ok"),
			"SHUTDOWN_MANAGER_STATE_FILE": filepath.Join(t.TempDir(), "state"),
		}},
		ports:   map[int]int{8090: mgr, 8080: listener},
		secrets: secrets(t, file),
	}
	p := startPod(t, pl.spec(t, d))
	p.MustWait(t, "the manager listening", kubeletsim.Output("shutdown-manager", `"listening"`))
	waitEnvoy(t, p, "envoy")

	// The NLB: traffic to Envoy, health checks to the manager's /lb.
	lb := lbsim.LB{Target: local(listener), Path: "/work", HealthTarget: local(mgr), HealthPath: "/lb",
		Workers: 4, HealthInterval: 20 * time.Millisecond, Deprogram: 100 * time.Millisecond, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flowing, done := make(chan struct{}), make(chan lbsim.Stats, 1)
	go func() { done <- lb.Run(ctx, flowing) }()
	testproc.WaitClosed(t, "a request through Envoy", flowing)
	p.MustWait(t, "a load-balancer hit", kubeletsim.Output("shutdown-manager", `"load-balancer hit"`))

	p.Terminate(grace)
	cancel()
	stats := <-done

	order(t, p,
		is(kubeletsim.EventTerminate, ""),
		is(kubeletsim.EventTerm, "shutdown-manager"),
		says("shutdown-manager", `"termination started; readiness now fails"`),
		says("shutdown-manager", `"status":503`),
		says("shutdown-manager", `"load balancer quiet; cooling down"`),
		step{"the manager answering /waitz", func(e kubeletsim.Event) bool {
			return e.Kind == kubeletsim.EventOutput && e.Container == "shutdown-manager" &&
				strings.Contains(e.Detail, `"@message":"answered"`) && strings.Contains(e.Detail, `"context":"waitz"`)
		}},
		is(kubeletsim.EventExited, "shutdown-manager"),
	)
	order(t, p,
		is(kubeletsim.EventHookStart, "envoy"),
		is(kubeletsim.EventHookEnd, "envoy"),
		is(kubeletsim.EventTerm, "envoy"),
		is(kubeletsim.EventExited, "envoy"),
	)
	hook, _, _ := p.First(kubeletsim.Is(kubeletsim.EventHookEnd, "envoy"))
	if hook.Code != http.StatusOK {
		t.Errorf("/waitz answered %q, want 200", hook.Detail)
	}
	// Envoy was held for the quiet window and the cool-down after the last
	// check (less a margin: an output event's time is when its line was
	// read, which can lag).
	if stats.OutOfRotation.IsZero() {
		t.Fatal("the load balancer never took the pod out of rotation")
	}
	var lastHit kubeletsim.Event
	for _, e := range p.Events() {
		if e.Kind == kubeletsim.EventOutput && e.Container == "shutdown-manager" && strings.Contains(e.Detail, `"load-balancer hit"`) {
			lastHit = e
		}
	}
	if held := hook.At.Sub(lastHit.At); held < interval+cooldown-50*time.Millisecond {
		t.Errorf("Envoy's hook returned %v after the last check, want INTERVAL+COOLDOWN (%v)", held, interval+cooldown)
	}
	none(t, p, "SIGKILL", kubeletsim.Is(kubeletsim.EventKill, ""))
	none(t, p, "the manager drained Envoy", kubeletsim.Output("envoy", "/healthcheck/fail"))
	for _, c := range []string{"envoy", "shutdown-manager"} {
		if code := p.MustExitCode(t, c); code != 0 {
			t.Errorf("%s exit code got %d, want 0", c, code)
		}
	}
	if stats.Failed != 0 || stats.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", stats.OK, stats.Failed, stats.FirstFailure)
	}
}
