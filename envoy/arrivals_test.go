package envoy

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// arrivalStats is an Istio-like sidecar's totals (envoy-admin.md §2.10).
const arrivalStats = `listener.0.0.0.0_15006.downstream_cx_total: 5
listener.0.0.0.0_15006.worker_0.downstream_cx_total: 3
listener.0.0.0.0_15006.worker_1.downstream_cx_total: 2
listener.0.0.0.0_15001.downstream_cx_total: 40
listener.0.0.0.0_15021.downstream_cx_total: 90
listener.0.0.0.0_15090.downstream_cx_total: 12
listener.10.96.0.1_443.downstream_cx_total: 7
listener.admin.downstream_cx_total: 300
listener.admin.main_thread.downstream_cx_total: 300
listener.envoy_internal_x.downstream_cx_total: 1
listener.0.0.0.0_15006.downstream_cx_active: 2
http.inbound_0.0.0.0_8080;.downstream_rq_total: 11
http.inbound_0.0.0.0_8080;.downstream_rq_http1_total: 11
http.agent.downstream_rq_total: 90
http.stats.downstream_rq_total: 12
http.secure_stats.downstream_rq_total: 1
http.admin.downstream_rq_total: 310
http.inbound_0.0.0.0_8080;.downstream_cx_total: 5
`

func TestArrivalsCounters(t *testing.T) {
	t.Parallel()
	stats, err := ParseStatsText(strings.NewReader(arrivalStats))
	if err != nil {
		t.Fatal(err)
	}
	only8080 := Selector{Include: regexp.MustCompile(`^listener\.0\.0\.0\.0_15006\.downstream_cx_active$`)}
	noInbound := Selector{Include: reqInclude, Exclude: regexp.MustCompile(`inbound`)}
	tests := []struct {
		name string
		a    Arrivals
		want map[string]uint64
	}{
		{"defaults", Arrivals{}, map[string]uint64{
			"listener.0.0.0.0_15006.downstream_cx_total":     5,
			"listener.10.96.0.1_443.downstream_cx_total":     7,
			"http.inbound_0.0.0.0_8080;.downstream_rq_total": 11,
		}},
		{"user connection selector", Arrivals{Conn: only8080}, map[string]uint64{
			"listener.0.0.0.0_15006.downstream_cx_total":     5,
			"http.inbound_0.0.0.0_8080;.downstream_rq_total": 11,
		}},
		{"user request selector", Arrivals{Request: noInbound}, map[string]uint64{
			"listener.0.0.0.0_15006.downstream_cx_total": 5,
			"listener.10.96.0.1_443.downstream_cx_total": 7,
			// DefaultRequestSelector's own exclusions are replaced, not added to.
			"http.agent.downstream_rq_total":        90,
			"http.stats.downstream_rq_total":        12,
			"http.secure_stats.downstream_rq_total": 1,
		}},
	}
	for _, tc := range tests {
		if got := tc.a.Counters(stats); !maps.Equal(got, tc.want) {
			t.Errorf("%s: Counters got %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := (Arrivals{}).Counters(nil); got == nil || len(got) != 0 {
		t.Errorf("Counters(nil) got %v, want an empty map", got)
	}
}
