package main

import (
	"context"
	"fmt"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/readiness"
)

// waitChecks reports the adaptive drain delay's counters and each READY_*
// condition's state now. A fatal condition that does not hold now is a
// problem: a start at this moment would wait for it and might fail.
func waitChecks(ctx context.Context, cfg *Config, admin *envoy.Client) []check {
	var out []check
	if cfg.Drain && cfg.drainAuto {
		c, err := admin.Arrivals(ctx, cfg.arrivals())
		switch {
		case err != nil:
			out = append(out, check{"warn", fmt.Sprintf("DRAIN_DELAY=auto: cannot read the new-traffic counters: %v", err)})
		case len(c) == 0:
			out = append(out, check{"warn", fmt.Sprintf("DRAIN_DELAY=auto: no downstream_cx_total or downstream_rq_total matches: the delay falls back to %v", min(lifecycle.DefaultDrainDelay, cfg.drainDelayMax()))})
		default:
			var sum uint64
			for _, v := range c {
				sum += v
			}
			out = append(out, check{"ok", fmt.Sprintf("DRAIN_DELAY=auto: %d new-traffic counters match, %d connections and requests so far; waits for %v of quiet, between %v and %v",
				len(c), sum, cfg.DrainQuiet, cfg.DrainDelayMin, cfg.drainDelayMax())})
		}
	}
	for _, r := range readiness.Once(ctx, cfg.readinessConditions(admin), cfg.RequestTimeout) {
		level := "ok"
		switch {
		case r.Met:
		case r.Fatal:
			level = "FAIL"
		default:
			level = "warn"
		}
		what := r.Detail
		if r.Err != nil {
			what = r.Err.Error()
		}
		out = append(out, check{level, fmt.Sprintf("readiness condition %s: %s (%s)", r.Name, r.State(), what)})
	}
	return out
}
