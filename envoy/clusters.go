package envoy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
)

const (
	pathClusters    = "/clusters"
	maxClustersBody = 64 << 20 // a big mesh lists thousands of hosts
	// warmingFilter reads the cluster and listener manager gauges from one
	// response, so they come from one moment (envoy-admin.md §2.9.4).
	warmingFilter = `^(cluster_manager|listener_manager)\.`
)

// HostHealth is Envoy's coarse health of an upstream host (coarseHealth,
// envoy-admin.md §2.9.3).
type HostHealth int

// Host health, best first.
const (
	HostHealthy HostHealth = iota
	HostDegraded
	HostUnhealthy
)

// String is "healthy", "degraded" or "unhealthy".
func (h HostHealth) String() string {
	switch h {
	case HostHealthy:
		return "healthy"
	case HostDegraded:
		return "degraded"
	}
	return "unhealthy"
}

// Host is one upstream host of a cluster.
type Host struct {
	Address string // "10.0.0.5:8080", "[fd00::5]:8080", or a pipe path
	Health  HostHealth
}

// Cluster is one active cluster in /clusters. Warming clusters are not
// listed there at all.
type Cluster struct {
	Name  string
	Hosts []Host
}

// Serving is the number of hosts Envoy can route to: healthy ones, and
// degraded ones (used when no healthy host is left).
func (c Cluster) Serving() int {
	n := 0
	for _, h := range c.Hosts {
		if h.Health != HostUnhealthy {
			n++
		}
	}
	return n
}

// ParseClustersJSON parses /clusters?format=json, the Clusters proto in
// proto JSON: fields with default values are absent, and {} means no
// active cluster (envoy-admin.md §2.9.2). Numbers are decoded with
// UseNumber. A body that is not a JSON object is an error.
func ParseClustersJSON(r io.Reader) ([]Cluster, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var doc struct {
		ClusterStatuses []struct {
			Name         string `json:"name"`
			HostStatuses []struct {
				Address      jsonAddress    `json:"address"`
				HealthStatus map[string]any `json:"health_status"`
			} `json:"host_statuses"`
		} `json:"cluster_statuses"`
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("cannot parse clusters json: %w", err)
	}
	out := make([]Cluster, 0, len(doc.ClusterStatuses))
	for _, cs := range doc.ClusterStatuses {
		if cs.Name == "" {
			return nil, errors.New("cannot parse clusters json: cluster without a name")
		}
		c := Cluster{Name: cs.Name}
		for _, hs := range cs.HostStatuses {
			c.Hosts = append(c.Hosts, Host{Address: hs.Address.String(), Health: hostHealth(hs.HealthStatus)})
		}
		out = append(out, c)
	}
	return out, nil
}

// hostHealth classifies a HostHealthStatus: any failure flag or an EDS
// status other than HEALTHY or DEGRADED is unhealthy (DRAINING counts as
// UNHEALTHY, as Envoy reads it); a degraded flag or status is degraded.
// pending_active_hc, excluded_via_immediate_hc_fail and active_hc_timeout
// never appear on a healthy host, so they count as unhealthy; unknown
// flags are ignored.
func hostHealth(hs map[string]any) HostHealth {
	flag := func(k string) bool { b, _ := hs[k].(bool); return b }
	for _, k := range []string{"failed_active_health_check", "failed_outlier_check", "pending_active_hc",
		"excluded_via_immediate_hc_fail", "active_hc_timeout"} {
		if flag(k) {
			return HostUnhealthy
		}
	}
	eds, _ := hs["eds_health_status"].(string)
	switch eds {
	case "", "HEALTHY":
	case "DEGRADED":
		return HostDegraded
	default:
		return HostUnhealthy
	}
	if flag("failed_active_degraded_check") || flag("failed_degraded_outlier_detection") {
		return HostDegraded
	}
	return HostHealthy
}

// jsonAddress is the Address proto: a socket address, or another variant
// (a pipe) kept by its path.
type jsonAddress struct {
	SocketAddress *struct {
		Address   string      `json:"address"`
		PortValue json.Number `json:"port_value"`
	} `json:"socket_address"`
	Pipe *struct {
		Path string `json:"path"`
	} `json:"pipe"`
}

func (a jsonAddress) String() string {
	switch {
	case a.SocketAddress != nil:
		port := a.SocketAddress.PortValue.String()
		if port == "" {
			port = "0" // proto JSON leaves out a zero port
		}
		return net.JoinHostPort(a.SocketAddress.Address, port)
	case a.Pipe != nil:
		return a.Pipe.Path
	}
	return ""
}

// clustersFilter matches exactly the given cluster names.
func clustersFilter(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(q, "|") + ")$"
}

// Clusters fetches /clusters?format=json. With names, it also sends a
// filter matching exactly them: Envoy 1.38+ then lists only those, older
// ones ignore it and list every cluster, so callers must still pick the
// names they want.
func (c *Client) Clusters(ctx context.Context, names ...string) ([]Cluster, error) {
	path := pathClusters + "?format=json"
	if len(names) > 0 {
		path += "&filter=" + escapeFilter(clustersFilter(names))
	}
	resp, err := c.send(ctx, c.hc, "GET", path, false)
	if err != nil {
		return nil, fmt.Errorf("cannot get clusters: %w", err)
	}
	defer drainClose(resp.Body)
	cs, err := ParseClustersJSON(newCappedReader(resp.Body, maxClustersBody))
	if err != nil {
		return nil, fmt.Errorf("cannot get clusters: %w", err)
	}
	return cs, nil
}

// Warming is what Envoy is still warming after LIVE (envoy-admin.md
// §2.9.4).
type Warming struct {
	Clusters  uint64 // cluster_manager.warming_clusters
	Listeners uint64 // listener_manager.total_listeners_warming
	// WorkersStarted is listener_manager.workers_started; before it is 1,
	// initializing listeners are counted as active, not warming.
	WorkersStarted bool
}

// Done reports whether nothing is warming and the gauges mean it.
func (w Warming) Done() bool { return w.WorkersStarted && w.Clusters == 0 && w.Listeners == 0 }

// ErrStatMissing means a stat the caller relies on was not in /stats.
var ErrStatMissing = errors.New("stat missing")

// ParseWarming reads the warming gauges. A missing warming gauge is an
// error wrapping ErrStatMissing; a missing workers_started reads as
// started, leaving the warming gauges as the only signal.
func ParseWarming(stats []Stat) (Warming, error) {
	m := map[string]uint64{}
	for _, s := range stats {
		m[s.Name] = s.Value
	}
	var w Warming
	var ok bool
	if w.Clusters, ok = m["cluster_manager.warming_clusters"]; !ok {
		return w, fmt.Errorf("%w: cluster_manager.warming_clusters", ErrStatMissing)
	}
	if w.Listeners, ok = m["listener_manager.total_listeners_warming"]; !ok {
		return w, fmt.Errorf("%w: listener_manager.total_listeners_warming", ErrStatMissing)
	}
	ws, ok := m["listener_manager.workers_started"]
	w.WorkersStarted = !ok || ws == 1
	return w, nil
}

// Warming fetches the cluster and listener manager gauges from one /stats
// answer and returns ParseWarming over them.
func (c *Client) Warming(ctx context.Context) (Warming, error) {
	stats, err := c.Stats(ctx, StatsQuery{Filter: warmingFilter})
	if err != nil {
		return Warming{}, fmt.Errorf("cannot read warming gauges: %w", err)
	}
	w, err := ParseWarming(stats)
	if err != nil {
		return w, fmt.Errorf("cannot read warming gauges: %w", err)
	}
	return w, nil
}

// String is for logs and doctor: "clusters=0 listeners=1 workers_started=true".
func (w Warming) String() string {
	return "clusters=" + strconv.FormatUint(w.Clusters, 10) + " listeners=" + strconv.FormatUint(w.Listeners, 10) +
		" workers_started=" + strconv.FormatBool(w.WorkersStarted)
}
