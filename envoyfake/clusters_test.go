package envoyfake

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestClustersText(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	if err := e.SetCluster("web", UpstreamHost{Address: "10.0.0.5:8080"},
		UpstreamHost{Address: "[fd00::5]:8080", Flags: []string{FlagPendingDynamicRemoval, FlagFailedActiveHC, FlagEDSStatusDraining}}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetCluster("db"); err != nil {
		t.Fatal(err)
	}
	a := call(t, http.MethodGet, e.AdminURL()+"/clusters")
	if a.status != http.StatusOK || a.header.Get("Content-Type") != ctText {
		t.Fatalf("GET /clusters got %d %q", a.status, a.header.Get("Content-Type"))
	}
	for _, want := range []string{
		"web::observability_name::web\n",
		"web::default_priority::max_connections::1024\n",
		"web::high_priority::max_retries::3\n",
		"web::added_via_api::false\n",
		"web::10.0.0.5:8080::cx_active::0\n",
		"web::10.0.0.5:8080::hostname::\n",
		"web::10.0.0.5:8080::health_flags::healthy\n",
		"web::10.0.0.5:8080::local_origin_success_rate::-1\n",
		// Envoy's order, whatever order the flags were set in.
		"web::[fd00::5]:8080::health_flags::/failed_active_hc/pending_dynamic_removal/eds_status_draining\n",
		"db::added_via_api::false\n",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("/clusters lacks %q; body:\n%s", want, a.body)
		}
	}
	if strings.Contains(a.body, "db::10.") {
		t.Errorf("a cluster without hosts got host lines:\n%s", a.body)
	}
}

func TestClustersJSON(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	if a := call(t, http.MethodGet, e.AdminURL()+"/clusters?format=json"); a.body != "{}" || a.header.Get("Content-Type") != ctJSON {
		t.Errorf("no cluster: got %q %q, want {} as application/json", a.body, a.header.Get("Content-Type"))
	}
	if err := e.SetCluster("web", UpstreamHost{Address: "10.0.0.5:8080"},
		UpstreamHost{Address: "10.0.0.6:8080", Flags: []string{FlagFailedActiveHC, FlagDegradedEDSHealth}}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetCluster("db"); err != nil {
		t.Fatal(err)
	}
	a := call(t, http.MethodGet, e.AdminURL()+"/clusters?format=json")
	if !strings.HasPrefix(a.body, "{\n \"cluster_statuses\"") {
		t.Errorf("body is not one-space pretty JSON:\n%s", a.body)
	}
	var doc struct {
		ClusterStatuses []map[string]any `json:"cluster_statuses"`
	}
	if err := json.Unmarshal([]byte(a.body), &doc); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, a.body)
	}
	if len(doc.ClusterStatuses) != 2 {
		t.Fatalf("cluster_statuses got %d, want 2", len(doc.ClusterStatuses))
	}
	web, db := doc.ClusterStatuses[0], doc.ClusterStatuses[1]
	if _, ok := web["added_via_api"]; ok {
		t.Errorf("added_via_api false is rendered, want it left out")
	}
	if _, ok := db["host_statuses"]; ok {
		t.Errorf("a cluster without hosts has host_statuses, want none")
	}
	hosts := web["host_statuses"].([]any)
	h0, h1 := hosts[0].(map[string]any), hosts[1].(map[string]any)
	if got, want := h0["address"], any(map[string]any{"socket_address": map[string]any{"address": "10.0.0.5", "port_value": 8080.0}}); !reflect.DeepEqual(got, want) {
		t.Errorf("address got %v, want %v", got, want)
	}
	if got, want := h0["health_status"], any(map[string]any{"eds_health_status": "HEALTHY"}); !reflect.DeepEqual(got, want) {
		t.Errorf("healthy host's health_status got %v, want %v", got, want)
	}
	if got, want := h1["health_status"], any(map[string]any{"eds_health_status": "DEGRADED", "failed_active_health_check": true}); !reflect.DeepEqual(got, want) {
		t.Errorf("failed host's health_status got %v, want %v", got, want)
	}
	for _, s := range h0["stats"].([]any) {
		m := s.(map[string]any)
		if _, ok := m["value"]; ok {
			t.Errorf("stat %v has a value, want zero values left out", m)
		}
		if typ, gauge := m["type"]; gauge != strings.HasSuffix(m["name"].(string), "_active") || gauge && typ != "GAUGE" {
			t.Errorf("stat %v: want type GAUGE on gauges only", m)
		}
	}
}

func TestClustersFilterByVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version    string
		filter     string
		wantStatus int
		wantWeb    bool
		wantDB     bool
	}{
		{DefaultVersion, "^web$", http.StatusOK, true, true}, // before 1.38: ignored
		{DefaultVersion, "(", http.StatusOK, true, true},
		{"abc/1.38.0/Clean/RELEASE/BoringSSL", "^web$", http.StatusOK, true, false},
		{"abc/1.38.0/Clean/RELEASE/BoringSSL", "we", http.StatusOK, true, false}, // partial match
		{"abc/1.38.0/Clean/RELEASE/BoringSSL", "(", http.StatusBadRequest, false, false},
	}
	for _, tc := range tests {
		e := mustStart(t, Options{Version: tc.version})
		for _, n := range []string{"web", "db"} {
			if err := e.SetCluster(n, UpstreamHost{Address: "10.0.0.5:80"}); err != nil {
				t.Fatal(err)
			}
		}
		a := call(t, http.MethodGet, e.AdminURL()+"/clusters?filter="+tc.filter)
		web, db := strings.Contains(a.body, "web::"), strings.Contains(a.body, "db::")
		if a.status != tc.wantStatus || web != tc.wantWeb || db != tc.wantDB {
			t.Errorf("%s filter %q: got %d web=%v db=%v, want %d web=%v db=%v",
				tc.version, tc.filter, a.status, web, db, tc.wantStatus, tc.wantWeb, tc.wantDB)
		}
		if tc.wantStatus == http.StatusBadRequest && a.body != "Invalid re2 regex" {
			t.Errorf("bad regex body got %q, want %q", a.body, "Invalid re2 regex")
		}
	}
}

func TestClustersSetAndRemove(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	if err := e.SetCluster("web", UpstreamHost{Address: "no-port"}); err == nil {
		t.Error("SetCluster with an address without a port got no error")
	}
	if err := e.SetCluster("web", UpstreamHost{Address: "10.0.0.5:80", Flags: []string{"sick"}}); err == nil {
		t.Error("SetCluster with an unknown flag got no error")
	}
	if err := e.SetCluster("web", UpstreamHost{Address: "10.0.0.5:80", Flags: []string{FlagFailedActiveHC}}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetCluster("web", UpstreamHost{Address: "10.0.0.5:80"}); err != nil {
		t.Fatal(err)
	}
	if a := call(t, http.MethodGet, e.AdminURL()+"/clusters"); !strings.Contains(a.body, "web::10.0.0.5:80::health_flags::healthy\n") {
		t.Errorf("replaced cluster: body\n%s", a.body)
	}
	e.RemoveCluster("web")
	if a := call(t, http.MethodGet, e.AdminURL()+"/clusters"); a.body != "" {
		t.Errorf("after RemoveCluster got %q, want empty", a.body)
	}
}

func TestWarmingGauges(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	stats := func() string {
		return call(t, http.MethodGet, e.AdminURL()+`/stats?filter=^(cluster_manager|listener_manager)\.`).body
	}
	check := func(name, want string) {
		t.Helper()
		if got, ok := statValue(stats(), name); !ok || got != want {
			t.Errorf("%s got %q (present %v), want %q", name, got, ok, want)
		}
	}
	check("cluster_manager.warming_clusters", "0")
	check("listener_manager.total_listeners_warming", "0")
	e.SetWarming(2, 1)
	check("cluster_manager.warming_clusters", "2")
	check("listener_manager.total_listeners_warming", "1")
	if err := e.SetCluster("web"); err != nil {
		t.Fatal(err)
	}
	check("cluster_manager.active_clusters", "1")
	e.SetWarming(0, 0)
	check("cluster_manager.warming_clusters", "0")
	if b := call(t, http.MethodGet, e.AdminURL()+"/stats/prometheus").body; !strings.Contains(b, "\nenvoy_cluster_manager_warming_clusters") {
		t.Errorf("prometheus lacks envoy_cluster_manager_warming_clusters:\n%s", b)
	}
}
