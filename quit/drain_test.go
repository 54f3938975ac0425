package quit

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

// startEnvoy starts a fake Envoy proxying to a held upstream, and a client
// for its admin.
func startEnvoy(t *testing.T) (*envoyfake.Envoy, *testproc.Held, *envoy.Client) {
	t.Helper()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	return e, h, envoytest.Client(t, e.AdminURL())
}

// calls lists the admin calls, polls folded.
func calls(e *envoyfake.Envoy) []string {
	var out []string
	for _, r := range e.Requests() {
		c := r.Method + " " + r.Path
		if r.Path == "/drain_listeners" {
			c += "?" + r.RawQuery
		}
		if len(out) == 0 || out[len(out)-1] != c {
			out = append(out, c)
		}
	}
	return out
}

func TestDrainSequence(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		d     Drain
		calls []string
	}{
		{"defaults", Drain{}, []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful", "GET /stats"}},
		{"skip_exit", Drain{SkipExit: true}, []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful&skip_exit", "GET /stats"}},
		{"inbound only, skip_exit", Drain{InboundOnly: true, SkipExit: true}, []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful&inboundonly&skip_exit", "GET /stats"}},
		{"no drain_listeners (marin3r)", Drain{SkipDrainListeners: true, SkipExit: true}, []string{"POST /healthcheck/fail", "GET /stats"}},
		{"no health-check fail", Drain{SkipHealthcheckFail: true}, []string{"POST /drain_listeners?graceful", "GET /stats"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, _, admin := startEnvoy(t)
			d := c.d
			d.Admin, d.Period = admin, 10*time.Millisecond
			res := d.Run(context.Background(), false)
			if res.Reason != "drained" || res.Remaining != 0 {
				t.Errorf("result got %+v, want drained with 0", res)
			}
			if got := calls(e); strings.Join(got, ",") != strings.Join(c.calls, ",") {
				t.Errorf("admin calls got %q, want %q", got, c.calls)
			}
		})
	}
}

func TestDrainDeadlineWithAConnectionOpen(t *testing.T) {
	t.Parallel()
	e, h, admin := startEnvoy(t)
	envoytest.Hold(t, e, h)
	// The deadline covers the health-check and drain calls too: it leaves
	// them room on a loaded machine, so the polls see the connection.
	const deadline = 2 * time.Second
	d := Drain{Admin: admin, Period: 10 * time.Millisecond, Deadline: deadline}
	res := d.Run(context.Background(), false)
	if res.Reason != "deadline" || res.Remaining != 1 {
		t.Errorf("result got %+v, want deadline with 1 connection", res)
	}
	if res.Took < deadline {
		t.Errorf("took %v, before the deadline", res.Took)
	}
}

func TestDrainEndsWhenTheConnectionCloses(t *testing.T) {
	t.Parallel()
	e, h, admin := startEnvoy(t)
	envoytest.Hold(t, e, h)
	d := Drain{Admin: admin, Period: 10 * time.Millisecond, Deadline: 10 * time.Second}
	done := make(chan Result, 1)
	go func() { done <- d.Run(context.Background(), false) }()
	envoytest.WaitRequests(t, e, "/stats", 3)
	select {
	case r := <-done:
		t.Fatalf("drain ended with a connection open: %+v", r)
	default:
	}
	h.Release()
	if res := testproc.Recv(t, "the drain", done); res.Reason != "drained" {
		t.Errorf("result got %+v, want drained", res)
	}
}

func TestDrainCancelledDuringStartDelay(t *testing.T) {
	t.Parallel()
	e, _, admin := startEnvoy(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := (&Drain{Admin: admin, StartDelay: time.Hour}).Run(ctx, false)
	if res.Reason != "cancelled" {
		t.Errorf("reason got %q, want cancelled", res.Reason)
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("admin calls got %d, want none before the start delay ends", n)
	}
}

func TestDrainDelays(t *testing.T) {
	t.Parallel()
	_, _, admin := startEnvoy(t)
	// An idle pod skips the delay; skipDelay does too; otherwise it is waited.
	if res := (&Drain{Admin: admin, Delay: time.Hour, SkipIdleDelay: true, Period: 10 * time.Millisecond}).Run(context.Background(), false); res.Reason != "drained" {
		t.Errorf("idle pod: result got %+v", res)
	}
	if res := (&Drain{Admin: admin, Delay: time.Hour, Period: 10 * time.Millisecond}).Run(context.Background(), true); res.Reason != "drained" {
		t.Errorf("skipDelay: result got %+v", res)
	}
	res := (&Drain{Admin: admin, Delay: time.Hour, Deadline: 50 * time.Millisecond}).Run(context.Background(), false)
	if res.Reason != "deadline" {
		t.Errorf("delay past the deadline: result got %+v, want deadline", res)
	}
}

func TestDrainStatMissingAndAdminGone(t *testing.T) {
	t.Parallel()
	e, _, admin := startEnvoy(t)
	sel := envoy.Selector{Include: regexp.MustCompile(`^no\.such\.stat$`)}
	if res := (&Drain{Admin: admin, Selector: sel}).Run(context.Background(), false); res.Reason != "stat missing" {
		t.Errorf("reason got %q, want stat missing", res.Reason)
	}
	e.Kill()
	if res := (&Drain{Admin: admin, Retries: 1}).Run(context.Background(), false); res.Reason != "admin unreachable" {
		t.Errorf("reason got %q, want admin unreachable", res.Reason)
	}
}
