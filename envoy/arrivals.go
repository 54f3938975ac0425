package envoy

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// arrivalFilter is the server-side /stats filter for the counters of new
// inbound connections and requests (envoy-admin.md §2.10). It is sent raw,
// which every Envoy version reads verbatim.
const arrivalFilter = `^(listener\..*\.downstream_cx_total|http\..*\.downstream_rq_total)$`

// arrivalReqExclude leaves out the admin HTTP connection manager (our own
// polls move it) and Istio's infrastructure ones: agent (kubelet probes on
// 15021), stats (Prometheus on 15090) and the secure metrics listeners.
// Probing alone must not keep a sidecar "busy" (§2.10, pitfalls).
var arrivalReqExclude = regexp.MustCompile(`^http\.(admin|agent|stats|secure_stats|secure_merged_stats)\.`)

// arrivalNever is left out whatever the selectors say: the admin counters
// move with every poll (the wait would never end), and per-worker splits
// would count each arrival twice.
var arrivalNever = regexp.MustCompile(`^(listener|http)\.admin\.|\.(worker_[0-9]+|main_thread)\.`)

// Arrivals chooses the counters of new inbound arrivals: connection totals
// listener.<addr>.downstream_cx_total and request totals
// http.<prefix>.downstream_rq_total. Each total is selected by the name of
// its gauge twin (…_active), so one Selector decides both which listeners
// a drain counts open connections on and which ones it watches for new
// arrivals.
type Arrivals struct {
	// Conn selects connection totals by listener.<addr>.downstream_cx_active.
	// The zero value means DefaultConnSelector.
	Conn Selector
	// Request selects request totals by http.<prefix>.downstream_rq_active.
	// The zero value means DefaultArrivalRequestSelector.
	Request Selector
}

// DefaultArrivalRequestSelector is DefaultRequestSelector without Istio's
// infrastructure connection managers (agent, stats, secure_stats,
// secure_merged_stats), whose probes and scrapes are not workload traffic.
func DefaultArrivalRequestSelector() Selector {
	return Selector{Include: reqInclude, Exclude: arrivalReqExclude, Filter: `downstream_rq_active$`}
}

func (a Arrivals) selectors() (conn, req Selector) {
	conn, req = a.Conn, a.Request
	if conn.Include == nil {
		conn = DefaultConnSelector()
	}
	if req.Include == nil {
		req = DefaultArrivalRequestSelector()
	}
	return conn, req
}

// Counters returns the selected totals by name, never the admin's own or
// per-worker ones. An empty map means no
// counter matched (the stats are missing), which callers must not read as
// "no traffic".
func (a Arrivals) Counters(stats []Stat) map[string]uint64 {
	conn, req := a.selectors()
	out := map[string]uint64{}
	for _, s := range stats {
		var sel Selector
		var twin string
		switch {
		case strings.HasPrefix(s.Name, "listener.") && strings.HasSuffix(s.Name, ".downstream_cx_total"):
			sel, twin = conn, strings.TrimSuffix(s.Name, "_total")+"_active"
		case strings.HasPrefix(s.Name, "http.") && strings.HasSuffix(s.Name, ".downstream_rq_total"):
			sel, twin = req, strings.TrimSuffix(s.Name, "_total")+"_active"
		default:
			continue
		}
		if arrivalNever.MatchString(s.Name) {
			continue
		}
		if _, matched := CountConnections([]Stat{{Name: twin}}, sel); matched == 1 {
			out[s.Name] = s.Value
		}
	}
	return out
}

// Arrivals fetches the connection and request totals (without usedonly, so
// an idle listener shows 0 rather than nothing) and returns a.Counters over
// them.
func (c *Client) Arrivals(ctx context.Context, a Arrivals) (map[string]uint64, error) {
	stats, err := c.Stats(ctx, StatsQuery{Filter: arrivalFilter})
	if err != nil {
		return nil, fmt.Errorf("cannot read arrival counters: %w", err)
	}
	return a.Counters(stats), nil
}
