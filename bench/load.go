package main

import (
	"fmt"
	"time"

	"envoy-lifecycle/lbsim"
)

// load terminates a pod under load 20 times in each mode and counts failed
// requests: graceful drain (target 0) and forward-at-once (the peers).
func (b *bench) load() {
	runs := 20
	if b.quick {
		runs = 5
	}
	for _, drain := range []bool{true, false} {
		kv := []string{"ENVOY_LIFECYCLE_DRAIN_DELAY=500ms", "ENVOY_LIFECYCLE_DRAIN_PERIOD=20ms", "ENVOY_LIFECYCLE_QUIT_VERIFY=0"}
		label, target := fmt.Sprintf("rollout under load, graceful drain (%d runs)", runs), "0 failed"
		if !drain {
			kv = append(kv, "ENVOY_LIFECYCLE_DRAIN=false")
			label, target = fmt.Sprintf("rollout under load, forward at once (%d runs)", runs), "(shows the test can fail)"
		}
		s := lbsim.Scenario{
			Bin: b.bin,
			App: func(addr string) []string { return []string{b.self, "serve", addr} },
			Env: env(kv...),
			LB:  lbsim.LB{Workers: 8, HealthInterval: 20 * time.Millisecond, Deprogram: 200 * time.Millisecond},
		}
		var ok, failed int64
		failedRuns, inflight := 0, 0
		var err error
		for i := 0; i < runs && err == nil; i++ {
			var r lbsim.Result
			if r, err = s.Run(); err == nil {
				ok += r.OK
				failed += r.Failed
				inflight += r.Term.Inflight
				if r.Failed > 0 {
					failedRuns++
				}
			}
		}
		if err != nil {
			row(label, "error: "+err.Error(), target)
			continue
		}
		row(label, fmt.Sprintf("%d of %d requests failed, %d runs with failures, %d in flight at app SIGTERM", failed, ok+failed, failedRuns, inflight), target)
	}
}
