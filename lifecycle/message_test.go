package lifecycle

import (
	"errors"
	"testing"
	"time"

	"envoy-lifecycle/quit"
)

func TestOutcomeMessage(t *testing.T) {
	cases := []struct {
		name string
		code int
		why  string
		d    *quit.Result
		s    *quit.Report
		want string
	}{
		{"local dev", 3, "app exited (exit status 3)", nil, &quit.Report{}, "envoy-lifecycle exit 3: app exited (exit status 3)"},
		{"drained and stopped", 143, "app exited (killed by signal terminated)",
			&quit.Result{Took: 5210 * time.Millisecond, Reason: "drained"}, &quit.Report{Method: "istio", Gone: true},
			"envoy-lifecycle exit 143: app exited (killed by signal terminated); drain 5.21s (drained, 0 connections left); proxy stopped via istio (gone)"},
		{"kept on failure", 1, "app exited (exit status 1)", nil, &quit.Report{Skipped: "NEVER_KILL_ISTIO_ON_FAILURE"},
			"envoy-lifecycle exit 1: app exited (exit status 1); proxy left running: NEVER_KILL_ISTIO_ON_FAILURE"},
		{"quit failed", 69, "envoy not LIVE within 10m0s (QUIT_WITHOUT_ENVOY_TIMEOUT); app not started", nil, &quit.Report{Err: errors.New("cannot stop envoy: refused")},
			"envoy-lifecycle exit 69: envoy not LIVE within 10m0s (QUIT_WITHOUT_ENVOY_TIMEOUT); app not started; proxy NOT stopped: cannot stop envoy: refused"},
	}
	for _, c := range cases {
		if got := (Outcome{Code: c.code, Why: c.why, Drained: c.d, Stopped: c.s}).Message(); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
