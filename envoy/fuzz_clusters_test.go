package envoy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseClustersJSON reads arbitrary /clusters?format=json answers: an
// error is one line and returns nothing; a success names every cluster,
// classifies every host, and reads the same again once re-encoded.
func FuzzParseClustersJSON(f *testing.F) {
	for _, s := range []string{"", "{}", "[]", "null", `{"cluster_statuses":[]}`, `{"cluster_statuses":[{}]}`,
		`{"cluster_statuses":[{"name":"web","host_statuses":[{"address":{"socket_address":{"address":"10.0.0.5","port_value":8080}},"health_status":{"eds_health_status":"HEALTHY"}}]}]}`,
		`{"cluster_statuses":[{"name":"v6","host_statuses":[{"address":{"socket_address":{"address":"fd00::5"}},"health_status":{"failed_outlier_check":true}}]}]}`,
		`{"cluster_statuses":[{"name":"p","host_statuses":[{"address":{"pipe":{"path":"/tmp/s"}},"health_status":{"eds_health_status":"DEGRADED","failed_active_degraded_check":true}}]}]}`,
		`{"cluster_statuses":[{"name":"x","host_statuses":[{"address":{"socket_address":{"address":"h","port_value":"1e400"}},"health_status":{"eds_health_status":7}}]}]}`,
		`{"cluster_statuses":[{"name":"d","host_statuses":[{"health_status":{"eds_health_status":"DRAINING","pending_active_hc":"yes"}}]}]} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseClustersJSON(bytes.NewReader(b))
		if err != nil {
			if cs != nil {
				t.Fatalf("got clusters %v with error %v", cs, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "cannot parse clusters json") {
				t.Fatalf("error is not one line saying what failed: %q", msg)
			}
			return
		}
		for _, c := range cs {
			if c.Name == "" {
				t.Fatalf("cluster without a name in %v", cs)
			}
			if n := c.Serving(); n < 0 || n > len(c.Hosts) {
				t.Fatalf("cluster %q serves %d of %d hosts", c.Name, n, len(c.Hosts))
			}
			for _, h := range c.Hosts {
				if h.Health < HostHealthy || h.Health > HostUnhealthy {
					t.Fatalf("host %q has health %d", h.Address, h.Health)
				}
			}
		}
		// Re-encoded (pipe addresses keep the text, an EDS status the
		// health), the clusters read back the same.
		again, err := ParseClustersJSON(bytes.NewReader(encodeClusters(t, cs)))
		if err != nil || len(again) != len(cs) {
			t.Fatalf("re-encoded %v reads as %v, %v", cs, again, err)
		}
		for i := range cs {
			if again[i].Name != cs[i].Name || len(again[i].Hosts) != len(cs[i].Hosts) {
				t.Fatalf("re-encoded %v reads as %v", cs[i], again[i])
			}
			for j, h := range cs[i].Hosts {
				if again[i].Hosts[j] != h {
					t.Fatalf("re-encoded host %v reads as %v", h, again[i].Hosts[j])
				}
			}
		}
	})
}

func encodeClusters(t *testing.T, cs []Cluster) []byte {
	t.Helper()
	eds := map[HostHealth]string{HostHealthy: "HEALTHY", HostDegraded: "DEGRADED", HostUnhealthy: "UNHEALTHY"}
	type host struct {
		Address      map[string]map[string]string `json:"address"`
		HealthStatus map[string]string            `json:"health_status"`
	}
	type cluster struct {
		Name  string `json:"name"`
		Hosts []host `json:"host_statuses"`
	}
	var doc struct {
		Clusters []cluster `json:"cluster_statuses"`
	}
	for _, c := range cs {
		oc := cluster{Name: c.Name}
		for _, h := range c.Hosts {
			oc.Hosts = append(oc.Hosts, host{Address: map[string]map[string]string{"pipe": {"path": h.Address}},
				HealthStatus: map[string]string{"eds_health_status": eds[h.Health]}})
		}
		doc.Clusters = append(doc.Clusters, oc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzArrivals reads arbitrary /stats text into the arrival counters and
// the warming gauges: each counter picked is a stat of that name and value,
// a connection or request total, never the admin's own nor a per-worker
// split.
func FuzzArrivals(f *testing.F) {
	addSeeds(f,
		"listener.0.0.0.0_8080.downstream_cx_total: 5\nlistener.0.0.0.0_8080.downstream_cx_active: 1\n",
		"http.inbound_0.0.0.0_8080.downstream_rq_total: 7\nhttp.admin.downstream_rq_total: 9\nhttp.agent.downstream_rq_total: 3\n",
		"listener.admin.downstream_cx_total: 4\nlistener.0.0.0.0_80.worker_0.downstream_cx_total: 2\nhttp.x.main_thread.downstream_rq_total: 1\n",
		"cluster_manager.warming_clusters: 0\nlistener_manager.total_listeners_warming: 0\nlistener_manager.workers_started: 1\n",
		"listener.x.downstream_cx_total: 18446744073709551615\nlistener.x.downstream_cx_total: 1\n",
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := ParseStatsText(bytes.NewReader(b))
		if err != nil {
			return
		}
		byName := map[string][]uint64{}
		for _, s := range stats {
			byName[s.Name] = append(byName[s.Name], s.Value)
		}
		for name, v := range (Arrivals{}).Counters(stats) {
			vals, ok := byName[name]
			if !ok {
				t.Fatalf("counter %q=%d is no stat", name, v)
			}
			found := false
			for _, x := range vals {
				found = found || x == v
			}
			if !found {
				t.Fatalf("counter %q=%d, the stat says %v", name, v, vals)
			}
			if !strings.HasSuffix(name, ".downstream_cx_total") && !strings.HasSuffix(name, ".downstream_rq_total") {
				t.Fatalf("counter %q is not a connection or request total", name)
			}
			if arrivalNever.MatchString(name) || arrivalReqExclude.MatchString(name) {
				t.Fatalf("counter %q is the admin's, Istio's infrastructure's or a worker's", name)
			}
		}
		w, err := ParseWarming(stats)
		if err == nil && w.Done() && (byName["cluster_manager.warming_clusters"] == nil || byName["listener_manager.total_listeners_warming"] == nil) {
			t.Fatalf("warming done %v without its gauges in %q", w, b)
		}
	})
}
