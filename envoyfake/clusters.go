package envoyfake

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Host health flags, as /clusters prints them in text without the leading
// "/", in Envoy's fixed order (envoy-admin.md §2.9.1).
const (
	FlagFailedActiveHC             = "failed_active_hc"
	FlagFailedOutlierCheck         = "failed_outlier_check"
	FlagFailedEDSHealth            = "failed_eds_health"
	FlagDegradedActiveHC           = "degraded_active_hc"
	FlagDegradedEDSHealth          = "degraded_eds_health"
	FlagPendingDynamicRemoval      = "pending_dynamic_removal"
	FlagPendingActiveHC            = "pending_active_hc"
	FlagExcludedViaImmediateHCFail = "excluded_via_immediate_hc_fail"
	FlagActiveHCTimeout            = "active_hc_timeout"
	FlagEDSStatusDraining          = "eds_status_draining"
)

var hostFlagOrder = []string{FlagFailedActiveHC, FlagFailedOutlierCheck, FlagFailedEDSHealth,
	FlagDegradedActiveHC, FlagDegradedEDSHealth, FlagPendingDynamicRemoval, FlagPendingActiveHC,
	FlagExcludedViaImmediateHCFail, FlagActiveHCTimeout, FlagEDSStatusDraining}

// jsonHostFlags maps text flags to their HostHealthStatus boolean (§2.9.2);
// the EDS flags set eds_health_status instead.
var jsonHostFlags = map[string]string{
	FlagFailedActiveHC:             "failed_active_health_check",
	FlagFailedOutlierCheck:         "failed_outlier_check",
	FlagDegradedActiveHC:           "failed_active_degraded_check",
	FlagPendingDynamicRemoval:      "pending_dynamic_removal",
	FlagPendingActiveHC:            "pending_active_hc",
	FlagExcludedViaImmediateHCFail: "excluded_via_immediate_hc_fail",
	FlagActiveHCTimeout:            "active_hc_timeout",
}

// UpstreamHost is one host of a fake cluster.
type UpstreamHost struct {
	Address string   // "10.0.0.5:8080" or "[fd00::5]:8080"
	Flags   []string // Flag* constants; none means healthy
}

// upstreams is the fake's cluster manager: active clusters and the
// warming gauges a test raises and lowers.
type upstreams struct {
	mu               sync.Mutex
	order            []string // cluster names, in the order first set
	clusters         map[string][]UpstreamHost
	warmingClusters  uint64
	warmingListeners uint64
}

// SetCluster adds or replaces an active cluster. Envoy lists only active
// clusters in /clusters: leave a warming cluster out (and count it with
// SetWarming) until it is warm. An address that is not host:port or a
// flag that is not a Flag* constant is an error.
func (e *Envoy) SetCluster(name string, hosts ...UpstreamHost) error {
	for _, h := range hosts {
		if _, _, err := net.SplitHostPort(h.Address); err != nil {
			return fmt.Errorf("invalid host address %q: want host:port: %w", h.Address, err)
		}
		for _, f := range h.Flags {
			if !slices.Contains(hostFlagOrder, f) {
				return fmt.Errorf("invalid host flag %q - valid flags are %q", f, hostFlagOrder)
			}
		}
	}
	u := &e.up
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.clusters == nil {
		u.clusters = map[string][]UpstreamHost{}
	}
	if _, ok := u.clusters[name]; !ok {
		u.order = append(u.order, name)
	}
	u.clusters[name] = slices.Clone(hosts)
	return nil
}

// RemoveCluster removes an active cluster (a CDS removal).
func (e *Envoy) RemoveCluster(name string) {
	u := &e.up
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.clusters, name)
	u.order = slices.DeleteFunc(u.order, func(n string) bool { return n == name })
}

// SetWarming sets cluster_manager.warming_clusters and
// listener_manager.total_listeners_warming.
func (e *Envoy) SetWarming(clusters, listeners uint64) {
	u := &e.up
	u.mu.Lock()
	defer u.mu.Unlock()
	u.warmingClusters, u.warmingListeners = clusters, listeners
}

type namedCluster struct {
	name  string
	hosts []UpstreamHost
}

// active lists the clusters whose name filter matches (nil: all).
func (u *upstreams) active(filter *regexp.Regexp) []namedCluster {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []namedCluster
	for _, n := range u.order {
		if filter == nil || filter.MatchString(n) {
			out = append(out, namedCluster{n, u.clusters[n]})
		}
	}
	return out
}

// upstreamStats are the cluster and listener manager gauges of §2.9.4.
func (e *Envoy) upstreamStats() []stat {
	u := &e.up
	u.mu.Lock()
	defer u.mu.Unlock()
	g := func(name string, v uint64) stat {
		return stat{name: name, kind: kindGauge, value: v, used: true, prom: strings.ReplaceAll(name, ".", "_")}
	}
	return []stat{
		g("cluster_manager.active_clusters", uint64(len(u.order))),
		g("cluster_manager.warming_clusters", u.warmingClusters),
		g("listener_manager.total_listeners_active", 1), // the one traffic listener
		g("listener_manager.total_listeners_warming", u.warmingListeners),
	}
}

// handleClusters is GET /clusters[?format=json][&filter=RE2]. The filter
// exists from 1.38 on (featClustersFilter); older releases ignore it.
func (e *Envoy) handleClusters(_ *http.Request, q params) reply {
	var filter *regexp.Regexp
	if f := q["filter"]; f != "" {
		if e.rel.supports(featClustersFilter) {
			re, err := regexp.Compile(f)
			if err != nil {
				return text(http.StatusBadRequest, "Invalid re2 regex")
			}
			filter = re
		}
	}
	cs := e.up.active(filter)
	if q["format"] == "json" {
		return reply{status: http.StatusOK, ctype: ctJSON, body: clustersJSON(cs)}
	}
	return text(http.StatusOK, clustersText(cs))
}

// hostStats are a host's counters and gauges, sorted by name (all zero in
// the fake: it sends nothing upstream through clusters).
var hostStats = []struct {
	name  string
	gauge bool
}{{"cx_active", true}, {"cx_connect_fail", false}, {"cx_total", false}, {"rq_active", true},
	{"rq_error", false}, {"rq_success", false}, {"rq_timeout", false}, {"rq_total", false}}

var circuitBreakers = []struct {
	name  string
	value int
}{{"max_connections", 1024}, {"max_pending_requests", 1024}, {"max_requests", 1024}, {"max_retries", 3}}

func clustersText(cs []namedCluster) string {
	var b strings.Builder
	for _, c := range cs {
		line := func(parts ...string) { b.WriteString(c.name + "::" + strings.Join(parts, "::") + "\n") }
		line("observability_name", c.name)
		for _, prio := range []string{"default_priority", "high_priority"} {
			for _, cb := range circuitBreakers {
				line(prio, cb.name, strconv.Itoa(cb.value))
			}
		}
		line("added_via_api", "false")
		for _, h := range c.hosts {
			for _, s := range hostStats {
				line(h.Address, s.name, "0")
			}
			line(h.Address, "hostname", "")
			line(h.Address, "health_flags", textFlags(h.Flags))
			for _, kv := range [][2]string{{"weight", "1"}, {"region", ""}, {"zone", ""}, {"sub_zone", ""},
				{"canary", "false"}, {"priority", "0"}, {"success_rate", "-1"}, {"local_origin_success_rate", "-1"}} {
				line(h.Address, kv[0], kv[1])
			}
		}
	}
	return b.String()
}

// textFlags is "healthy", or the set flags with a leading "/" each, in
// Envoy's order.
func textFlags(flags []string) string {
	var b strings.Builder
	for _, f := range hostFlagOrder {
		if slices.Contains(flags, f) {
			b.WriteString("/" + f)
		}
	}
	if b.Len() == 0 {
		return "healthy"
	}
	return b.String()
}

// edsHealth is eds_health_status: DRAINING replaces the others, then
// UNHEALTHY, DEGRADED, HEALTHY (§2.9.2).
func edsHealth(flags []string) string {
	switch {
	case slices.Contains(flags, FlagEDSStatusDraining):
		return "DRAINING"
	case slices.Contains(flags, FlagFailedEDSHealth):
		return "UNHEALTHY"
	case slices.Contains(flags, FlagDegradedEDSHealth):
		return "DEGRADED"
	}
	return "HEALTHY"
}

// clustersJSON renders the Clusters proto as Envoy does: proto field names,
// one-space indent, fields with default values left out ({} for no
// cluster), uint64 stat values as strings.
func clustersJSON(cs []namedCluster) string {
	type obj = map[string]any
	var statuses []any
	for _, c := range cs {
		st := obj{"name": c.name, "observability_name": c.name}
		var thresholds []any
		for _, prio := range []string{"", "HIGH"} {
			t := obj{}
			if prio != "" {
				t["priority"] = prio
			}
			for _, cb := range circuitBreakers {
				t[cb.name] = cb.value
			}
			thresholds = append(thresholds, t)
		}
		st["circuit_breakers"] = obj{"thresholds": thresholds}
		var hosts []any
		for _, h := range c.hosts {
			hostName, port, _ := net.SplitHostPort(h.Address)
			p, _ := strconv.Atoi(port)
			addr := obj{"address": hostName}
			if p != 0 {
				addr["port_value"] = p
			}
			var stats []any
			for _, s := range hostStats {
				m := obj{"name": s.name} // value 0 is left out
				if s.gauge {
					m["type"] = "GAUGE"
				}
				stats = append(stats, m)
			}
			hs := obj{"eds_health_status": edsHealth(h.Flags)}
			for _, f := range h.Flags {
				if k, ok := jsonHostFlags[f]; ok {
					hs[k] = true
				}
			}
			hosts = append(hosts, obj{
				"address":       obj{"socket_address": addr},
				"stats":         stats,
				"health_status": hs,
				"weight":        1,
				"locality":      obj{},
			})
		}
		if len(hosts) > 0 {
			st["host_statuses"] = hosts
		}
		statuses = append(statuses, st)
	}
	doc := obj{}
	if len(statuses) > 0 {
		doc["cluster_statuses"] = statuses
	}
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return "{}"
	}
	return string(b)
}
