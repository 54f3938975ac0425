package main

import (
	"os/exec"
	"strings"
	"testing"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
)

func runDoctorBin(t *testing.T, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin(t), "doctor")
	cmd.Env = append(baseEnv(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	agent := startAgent(t, e)
	old := envoytest.Start(t, envoyfake.Options{Version: "abc/1.11.0/Clean/RELEASE/BoringSSL"})
	cases := []struct {
		name     string
		env      []string
		wantCode int
		want     []string
	}{
		{"healthy istio sidecar", []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ISTIO_QUIT_API=" + agent.URL(), "ENVOY_LIFECYCLE_GRACE_PERIOD=30"}, 0,
			[]string{"state LIVE, version 0123abcd/1.36.6", "drain_listeners yes, graceful drain yes, skip_exit yes", "answers 405", "admin address is local", "istio quit api", "connection stat found", "fits the grace period 30s", "0 problems"}},
		{"grace period too short", []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ENVOY_LIFECYCLE_GRACE_PERIOD=20s"}, exitProblems,
			[]string{"FAIL", "exceeds the grace period 20s"}},
		{"admin unreachable", []string{"ENVOY_ADMIN_API=http://127.0.0.1:1"}, exitProblems, []string{"FAIL", "not reachable"}},
		{"istio quit api unreachable", []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ISTIO_QUIT_API=http://127.0.0.1:1"}, exitProblems, []string{"FAIL  istio quit api"}},
		{"old envoy", []string{"ENVOY_ADMIN_API=" + old.AdminURL()}, 0, []string{"envoy 1.11.0: drain_listeners no", "answers 405", "has no /drain_listeners"}},
		{"bad config", []string{"ENVOY_LIFECYCLE_GRACE_PERIOD=soon"}, exitUsage, []string{"ENVOY_LIFECYCLE_GRACE_PERIOD=\"soon\""}},
	}
	for _, c := range cases {
		out, code := runDoctorBin(t, c.env...)
		if code != c.wantCode {
			t.Errorf("%s: exit code got %d, want %d\n%s", c.name, code, c.wantCode, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: report lacks %q:\n%s", c.name, w, out)
			}
		}
	}
	// doctor must not have stopped anything.
	select {
	case <-e.Quit():
		t.Error("doctor made envoy quit")
	case <-agent.Quit():
		t.Error("doctor made pilot-agent quit")
	default:
	}
}
