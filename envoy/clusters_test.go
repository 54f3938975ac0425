package envoy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// refClustersJSON is the illustrative body of envoy-admin.md §2.9.2.
const refClustersJSON = `{
 "cluster_statuses": [
  {
   "name": "web",
   "host_statuses": [
    {
     "address": {"socket_address": {"address": "10.0.0.5", "port_value": 8080}},
     "stats": [{"name": "cx_connect_fail"}, {"name": "cx_total", "value": "7"},
               {"name": "cx_active", "value": "2", "type": "GAUGE"}],
     "health_status": {"eds_health_status": "HEALTHY"},
     "weight": 1,
     "locality": {}
    }
   ],
   "circuit_breakers": {"thresholds": [{"max_connections": 1024, "max_pending_requests": 1024,
     "max_requests": 1024, "max_retries": 3},
    {"priority": "HIGH", "max_connections": 1024, "max_pending_requests": 1024,
     "max_requests": 1024, "max_retries": 3}]},
   "observability_name": "web"
  }
 ]
}`

func host(addr string, hs string) string {
	return `{"address":{"socket_address":{"address":"` + addr + `","port_value":80}},"health_status":` + hs + `}`
}

func TestParseClustersJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    []Cluster
		wantErr bool
	}{
		{name: "reference body", body: refClustersJSON,
			want: []Cluster{{Name: "web", Hosts: []Host{{"10.0.0.5:8080", HostHealthy}}}}},
		{name: "no active cluster", body: `{}`, want: []Cluster{}},
		{name: "cluster without hosts", body: `{"cluster_statuses":[{"name":"db"}]}`, want: []Cluster{{Name: "db"}}},
		{name: "health flags", body: `{"cluster_statuses":[{"name":"c","host_statuses":[` + strings.Join([]string{
			host("10.0.0.1", `{"eds_health_status":"HEALTHY"}`),
			host("10.0.0.2", `{"failed_active_health_check":true,"eds_health_status":"HEALTHY"}`),
			host("10.0.0.3", `{"failed_outlier_check":true,"eds_health_status":"HEALTHY"}`),
			host("10.0.0.4", `{"eds_health_status":"UNHEALTHY"}`),
			host("10.0.0.5", `{"eds_health_status":"DRAINING"}`),
			host("10.0.0.6", `{"eds_health_status":"DEGRADED"}`),
			host("10.0.0.7", `{"failed_active_degraded_check":true,"eds_health_status":"HEALTHY"}`),
			host("10.0.0.8", `{"pending_dynamic_removal":true,"eds_health_status":"HEALTHY"}`),
			host("10.0.0.9", `{"pending_active_hc":true,"failed_active_health_check":true,"eds_health_status":"HEALTHY"}`),
			host("fd00::5", `{}`),
		}, ",") + `]}]}`,
			want: []Cluster{{Name: "c", Hosts: []Host{
				{"10.0.0.1:80", HostHealthy}, {"10.0.0.2:80", HostUnhealthy}, {"10.0.0.3:80", HostUnhealthy},
				{"10.0.0.4:80", HostUnhealthy}, {"10.0.0.5:80", HostUnhealthy}, {"10.0.0.6:80", HostDegraded},
				{"10.0.0.7:80", HostDegraded}, {"10.0.0.8:80", HostHealthy}, {"10.0.0.9:80", HostUnhealthy},
				{"[fd00::5]:80", HostHealthy},
			}}}},
		{name: "html", body: `<html>starting</html>`, wantErr: true},
		{name: "truncated", body: refClustersJSON[:len(refClustersJSON)/2], wantErr: true},
		{name: "not an object", body: `[]`, wantErr: true},
		{name: "nameless cluster", body: `{"cluster_statuses":[{"host_statuses":[]}]}`, wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseClustersJSON(strings.NewReader(tc.body))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: ParseClustersJSON error got %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ParseClustersJSON got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestClusterServing(t *testing.T) {
	t.Parallel()
	c := Cluster{Name: "c", Hosts: []Host{{"a", HostUnhealthy}, {"b", HostDegraded}, {"c", HostHealthy}}}
	if got := c.Serving(); got != 2 {
		t.Errorf("Serving got %d, want 2", got)
	}
	if got := (Cluster{}).Serving(); got != 0 {
		t.Errorf("Serving of a cluster without hosts got %d, want 0", got)
	}
}

func TestParseWarming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stats    string
		want     Warming
		wantDone bool
		wantErr  error
	}{
		{"nothing warming", "cluster_manager.warming_clusters: 0\nlistener_manager.total_listeners_warming: 0\nlistener_manager.workers_started: 1\n",
			Warming{WorkersStarted: true}, true, nil},
		{"a cluster warming", "cluster_manager.warming_clusters: 2\nlistener_manager.total_listeners_warming: 0\nlistener_manager.workers_started: 1\n",
			Warming{Clusters: 2, WorkersStarted: true}, false, nil},
		{"a listener warming", "cluster_manager.warming_clusters: 0\nlistener_manager.total_listeners_warming: 1\nlistener_manager.workers_started: 1\n",
			Warming{Listeners: 1, WorkersStarted: true}, false, nil},
		{"workers not started", "cluster_manager.warming_clusters: 0\nlistener_manager.total_listeners_warming: 0\nlistener_manager.workers_started: 0\n",
			Warming{}, false, nil},
		{"no workers_started gauge", "cluster_manager.warming_clusters: 0\nlistener_manager.total_listeners_warming: 0\n",
			Warming{WorkersStarted: true}, true, nil},
		{"cluster gauge missing", "listener_manager.total_listeners_warming: 0\n", Warming{}, false, ErrStatMissing},
		{"listener gauge missing", "cluster_manager.warming_clusters: 0\n", Warming{}, false, ErrStatMissing},
	}
	for _, tc := range tests {
		stats, err := ParseStatsText(strings.NewReader(tc.stats))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseWarming(stats)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: ParseWarming error got %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.wantErr != nil {
			continue
		}
		if got != tc.want || got.Done() != tc.wantDone {
			t.Errorf("%s: ParseWarming got %+v (done %v), want %+v (done %v)", tc.name, got, got.Done(), tc.want, tc.wantDone)
		}
	}
}

func TestClientClustersAndWarming(t *testing.T) {
	t.Parallel()
	var paths []string
	srv := startFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		switch r.URL.Path {
		case "/clusters":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, refClustersJSON)
		case "/stats":
			io.WriteString(w, "cluster_manager.warming_clusters: 1\nlistener_manager.total_listeners_warming: 0\nlistener_manager.workers_started: 1\n")
		}
	}))
	c, err := New(srv.URL, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs, err := c.Clusters(ctx, "web", "a.b|c")
	if err != nil || len(cs) != 1 || cs[0].Serving() != 1 {
		t.Errorf("Clusters got %+v, %v; want web with 1 serving host", cs, err)
	}
	if _, err := c.Clusters(ctx); err != nil {
		t.Errorf("Clusters without names: %v", err)
	}
	w, err := c.Warming(ctx)
	if err != nil || w.Clusters != 1 || w.Done() {
		t.Errorf("Warming got %+v, %v; want one cluster warming", w, err)
	}
	want := []string{
		`/clusters?format=json&filter=^(web|a\.b\|c)$`,
		`/clusters?format=json`,
		`/stats?filter=^(cluster_manager|listener_manager)\.`,
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("requests got %q, want %q", paths, want)
	}
}

func TestClientClustersBlackHole(t *testing.T) {
	t.Parallel()
	c, err := New(blackHole(t), Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Clusters(context.Background(), "web"); err == nil {
		t.Fatal("Clusters on a black hole got no error")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Clusters on a black hole took %v, want about the 100ms timeout", took)
	}
}
