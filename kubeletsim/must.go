package kubeletsim

import (
	"context"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

// Helpers for tests that play pods: each fails the test at the caller's
// line instead of returning an error.

// MustStart starts spec, logging through tb.Logf unless spec says
// otherwise; the pod is closed when the test ends, and its timeline logged
// if the test failed.
func MustStart(tb testing.TB, spec Spec) *Pod {
	tb.Helper()
	if spec.Logf == nil {
		spec.Logf = tb.Logf
	}
	p, err := Start(spec)
	if err != nil {
		tb.Fatalf("cannot start the pod: %v", err)
	}
	tb.Cleanup(func() {
		p.Close()
		if tb.Failed() {
			tb.Logf("timeline:\n%s", p.Timeline())
		}
	})
	return p
}

// MustWait waits, within testproc.Timeout, for an event matching pred and
// returns it; what names it in the failure.
func (p *Pod) MustWait(tb testing.TB, what string, pred func(Event) bool) Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Timeout)
	defer cancel()
	e, err := p.WaitEvent(ctx, pred)
	if err != nil {
		tb.Fatalf("waiting for %s: %v\ntimeline:\n%s", what, err, p.Timeline())
	}
	return e
}

// MustExitCode is the exit code of container name, which must have exited.
func (p *Pod) MustExitCode(tb testing.TB, name string) int {
	tb.Helper()
	st, ok := p.Status(name)
	if !ok || !st.Exited {
		tb.Fatalf("container %s has not exited (%+v)", name, st)
	}
	return st.ExitCode
}
