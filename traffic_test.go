package main

import (
	"os"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/lbsim"
)

func init() {
	// serve ADDR: the load-tested app, see lbsim.ServeApp.
	testproc.Register("serve", func(args []string) int { return lbsim.ServeApp(args[0], 10*time.Millisecond, os.Stdout) })
}

// trafficScenario is a pod under load, terminated mid-load. The LB needs
// 200ms to deprogram the pod after the health check fails; the drain delay
// covers it.
func trafficScenario(t *testing.T, drain bool) lbsim.Scenario {
	env := append(baseEnv(),
		"ENVOY_LIFECYCLE_DRAIN_DELAY=500ms",
		"ENVOY_LIFECYCLE_DRAIN_PERIOD=20ms",
		"ENVOY_LIFECYCLE_QUIT_VERIFY=0",
	)
	if !drain {
		env = append(env, "ENVOY_LIFECYCLE_DRAIN=false")
	}
	return lbsim.Scenario{
		Bin: bin(t),
		App: func(addr string) []string { return app("serve", addr) },
		Env: env,
		LB:  lbsim.LB{Workers: 8, HealthInterval: 20 * time.Millisecond, Deprogram: 200 * time.Millisecond},
	}
}

// TestRolloutUnderLoad: SIGTERM mid-load loses no request, and the app gets
// its SIGTERM only once nothing is in flight. Forwarding at once, the same
// scenario fails requests, which shows the test can fail.
func TestRolloutUnderLoad(t *testing.T) {
	t.Parallel()
	t.Run("drain", func(t *testing.T) {
		t.Parallel()
		r, err := trafficScenario(t, true).Run()
		if err != nil {
			t.Fatalf("scenario: %v\n%s", err, r.Stderr)
		}
		if r.Failed != 0 || r.OK == 0 {
			t.Errorf("requests got ok=%d failed=%d (first: %s), want some ok and none failed\n%s", r.OK, r.Failed, r.FirstFailure, r.Stderr)
		}
		if r.Term.Inflight != 0 {
			t.Errorf("app got SIGTERM with %d requests in flight, want 0", r.Term.Inflight)
		}
		if r.OutOfRotation.IsZero() || !r.OutOfRotation.Before(r.Term.At) {
			t.Errorf("app got SIGTERM at %v, before the LB stopped sending at %v", r.Term.At, r.OutOfRotation)
		}
		if r.ExitCode != 0 {
			t.Errorf("exit code got %d, want 0", r.ExitCode)
		}
	})
	t.Run("forward at once", func(t *testing.T) {
		t.Parallel()
		r, err := trafficScenario(t, false).Run()
		if err != nil {
			t.Fatalf("scenario: %v\n%s", err, r.Stderr)
		}
		if r.Failed == 0 {
			t.Errorf("requests got ok=%d failed=0, want failures when forwarding at once", r.OK)
		}
	})
}
