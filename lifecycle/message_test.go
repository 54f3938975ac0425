package lifecycle

import (
	"errors"
	"strings"
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
		{"adaptive delay", 0, "app exited (exit status 0)",
			&quit.Result{Took: 2100 * time.Millisecond, Reason: "drained", Delayed: 812 * time.Millisecond, Quiet: quit.QuietReached}, &quit.Report{Method: "envoy"},
			"envoy-lifecycle exit 0: app exited (exit status 0); drain 2.1s (delay auto 812ms: quiet; drained, 0 connections left); proxy stopped via envoy"},
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

// Issue 14.2 and 14.15: the message is one line and shows no URL password,
// whatever the cause and the quit's error carry.
func TestOutcomeMessageRedactedOneLine(t *testing.T) {
	o := Outcome{
		Code: 1,
		Why:  "cannot start app: fork/exec /opt/a\nb: no such file",
		Stopped: &quit.Report{Err: errors.New(`cannot stop envoy: kill url http://u:s3cret@10.0.0.1/quit is not local; ` +
			`Post "https://admin:hunter2@127.0.0.1:1/quitquitquit?token=t0k3n": refused`)},
	}
	got := o.Message()
	want := `envoy-lifecycle exit 1: cannot start app: fork/exec /opt/a b: no such file; proxy NOT stopped: cannot stop envoy: ` +
		`kill url http://REDACTED@10.0.0.1/quit is not local; Post "https://REDACTED@127.0.0.1:1/quitquitquit?token=REDACTED": refused`
	if got != want {
		t.Errorf("Message got\n%q, want\n%q", got, want)
	}
	for _, secret := range []string{"s3cret", "hunter2", "t0k3n"} {
		if strings.Contains(got, secret) {
			t.Errorf("Message shows %q: %s", secret, got)
		}
	}
}
