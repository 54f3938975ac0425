package doctor

import (
	"context"
	"fmt"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/readiness"
)

// waitChecks reports the counters the adaptive drain delay watches and each
// readiness condition's state now. A fatal condition that does not hold now
// is a problem: a start at this moment would wait for it and might fail.
func waitChecks(ctx context.Context, s *Settings, admin *envoy.Client) []Check {
	var out []Check
	if q := s.AutoDelay; s.Drain && q != nil {
		c, err := admin.Arrivals(ctx, s.Arrivals)
		switch {
		case err != nil:
			out = append(out, Check{Warn, fmt.Sprintf("DRAIN_DELAY=auto: cannot read the new-traffic counters: %v", err)})
		case len(c) == 0:
			out = append(out, Check{Warn, fmt.Sprintf("DRAIN_DELAY=auto: no downstream_cx_total or downstream_rq_total matches: the delay falls back to %v", min(q.Fallback, q.Max))})
		default:
			var sum uint64
			for _, v := range c {
				sum += v
			}
			out = append(out, Check{OK, fmt.Sprintf("DRAIN_DELAY=auto: %d new-traffic counters match, %d connections and requests so far; waits for %v of quiet, between %v and %v",
				len(c), sum, q.Window, q.Min, q.Max)})
		}
	}
	if s.Readiness == nil {
		return out
	}
	for _, r := range readiness.Once(ctx, s.Readiness(admin), s.RequestTimeout) {
		level := OK
		switch {
		case r.Met:
		case r.Fatal:
			level = Fail
		default:
			level = Warn
		}
		what := r.Detail
		if r.Err != nil {
			what = r.Err.Error()
		}
		out = append(out, Check{level, fmt.Sprintf("readiness condition %s: %s (%s)", r.Name, r.State(), what)})
	}
	return out
}
