package envoyfake

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

func TestStatsText(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	body := call(t, "GET", e.AdminURL()+"/stats").body
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if !strings.HasSuffix(body, "\n") {
		t.Error("text stats do not end with a newline")
	}
	if lines[0] != `control_plane.identifier: "abc"` {
		t.Errorf("first line got %q, want the text readout", lines[0])
	}
	if last := lines[len(lines)-1]; last != "h: No recorded values" {
		t.Errorf("last line got %q, want the histogram", last)
	}
	scalars := lines[1 : len(lines)-1]
	names := make([]string, len(scalars))
	for i, l := range scalars {
		names[i], _, _ = strings.Cut(l, ": ")
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("counters and gauges not sorted by name: %v", names)
	}
	lp := "listener." + strings.ReplaceAll(e.ListenerAddr(), ":", "_")
	for name, want := range map[string]string{
		lp + ".downstream_cx_active":                      "0",
		lp + ".worker_0.downstream_cx_active":             "0",
		lp + ".worker_1.downstream_cx_active":             "0",
		"http.ingress_http.downstream_cx_active":          "0",
		"http.ingress_http.downstream_rq_active":          "0",
		"server.state":                                    "0",
		"server.live":                                     "1",
		"listener_manager.workers_started":                "1",
		"cluster_manager.cds.update_success":              "1",
		"listener_manager.lds.update_success":             "1",
		"listener.admin.downstream_cx_active":             "",
		"listener.admin.main_thread.downstream_cx_active": "",
		"http.admin.downstream_cx_active":                 "",
	} {
		got, ok := statValue(body, name)
		if !ok {
			t.Errorf("stat %s missing", name)
		} else if want != "" && got != want {
			t.Errorf("stat %s got %s, want %s", name, got, want)
		}
	}
	// The admin connection carrying this very request is counted.
	if v, _ := statValue(body, "listener.admin.downstream_cx_active"); v == "0" {
		t.Error("listener.admin.downstream_cx_active is 0 during an admin request")
	}
}

func TestStatsFilterAndUsedOnly(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	lp := "listener." + strings.ReplaceAll(e.ListenerAddr(), ":", "_")

	// Unencoded (as Envoy Gateway and Istio send it) and percent-encoded.
	raw := call(t, "GET", e.AdminURL()+`/stats?filter=^listener\..*downstream_cx_active$`).body
	enc := call(t, "GET", e.AdminURL()+"/stats?filter="+url.QueryEscape(`^listener\..*downstream_cx_active$`)).body
	for _, body := range []string{raw, enc} {
		for line := range strings.SplitSeq(strings.TrimSuffix(body, "\n"), "\n") {
			if !strings.HasPrefix(line, "listener.") || !strings.Contains(line, "downstream_cx_active: ") {
				t.Errorf("filtered line %q does not match", line)
			}
		}
		if _, ok := statValue(body, lp+".downstream_cx_active"); !ok {
			t.Errorf("filtered stats lack the listener gauge:\n%s", body)
		}
	}
	// Partial match: no anchors needed.
	if body := call(t, "GET", e.AdminURL()+"/stats?filter=server.stat").body; body != "server.state: 0\n" {
		t.Errorf("partial match got %q", body)
	}

	used := call(t, "GET", e.AdminURL()+"/stats?usedonly").body
	for _, absent := range []string{lp + ".downstream_cx_active", "h", "cluster_manager.cds.update_rejected", "http.ingress_http.downstream_rq_active"} {
		if _, ok := statValue(used, absent); ok {
			t.Errorf("usedonly shows never-written stat %s", absent)
		}
	}
	for _, present := range []string{"server.state", "listener.admin.downstream_cx_active", "control_plane.identifier"} {
		if _, ok := statValue(used, present); !ok {
			t.Errorf("usedonly lacks %s", present)
		}
	}

	// A gauge that went back to 0 still shows.
	c := dial(t, e.ListenerAddr())
	testproc.WaitFor(t, "connection counted", func() bool { return e.ActiveConnections() == 1 })
	_ = c.Close()
	testproc.WaitFor(t, "connection gone", func() bool { return e.ActiveConnections() == 0 })
	used = call(t, "GET", e.AdminURL()+`/stats?usedonly&filter=downstream_cx_active$`).body
	if v, ok := statValue(used, lp+".downstream_cx_active"); !ok || v != "0" {
		t.Errorf("usedonly after close got %q %v, want 0 shown:\n%s", v, ok, used)
	}

	if body := call(t, "GET", e.AdminURL()+"/stats?type=Counters").body; strings.Contains(body, "server.state") || !strings.Contains(body, "update_success") {
		t.Errorf("type=Counters got:\n%s", body)
	}
}

func TestStatsJSON(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	a := call(t, "GET", e.AdminURL()+"/stats?format=json")
	dec := json.NewDecoder(strings.NewReader(a.body))
	dec.UseNumber()
	var doc struct {
		Stats []map[string]any `json:"stats"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode: %v\n%s", err, a.body)
	}
	last := doc.Stats[len(doc.Stats)-1]
	if _, hasName := last["name"]; hasName || last["histograms"] == nil {
		t.Errorf("last element got %v, want the histograms element without name", last)
	}
	values := map[string]any{}
	for _, s := range doc.Stats[:len(doc.Stats)-1] {
		values[s["name"].(string)] = s["value"]
	}
	if v := values["control_plane.identifier"]; v != "abc" {
		t.Errorf("text readout value got %#v, want string abc", v)
	}
	if v := values["server.state"]; v != json.Number("0") {
		t.Errorf("server.state got %#v, want 0", v)
	}
	lp := "listener." + strings.ReplaceAll(e.ListenerAddr(), ":", "_")
	if _, ok := values[lp+".downstream_cx_active"]; !ok {
		t.Error("json lacks the listener gauge")
	}

	// The shape Envoy Gateway queries: exact name, unencoded regex.
	one := call(t, "GET", e.AdminURL()+`//stats?filter=^server\.total_connections$&format=json`).body
	if one != `{"stats":[{"name":"server.total_connections","value":0}]}` {
		t.Errorf("got %s", one)
	}
	if empty := call(t, "GET", e.AdminURL()+`/stats?filter=^nothing$&format=json`).body; empty != `{"stats":[]}` {
		t.Errorf("empty got %s", empty)
	}
}

func TestStatsPrometheus(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	addr := strings.ReplaceAll(e.ListenerAddr(), ":", "_")
	notAdmin := "&filter=" + url.QueryEscape("ingress|^listener\\.1|server\\.state") // admin counts move between calls
	a := call(t, "GET", e.AdminURL()+"/stats?format=prometheus"+notAdmin)
	b := call(t, "GET", e.AdminURL()+"/stats/prometheus?"+notAdmin[1:])
	if a.body != b.body {
		t.Errorf("/stats?format=prometheus and /stats/prometheus differ:\n%s\n---\n%s", a.body, b.body)
	}
	if ct := b.header.Get("Content-Type"); ct != ctText {
		t.Errorf("content-type got %q", ct)
	}
	full := call(t, "GET", e.AdminURL()+"/stats/prometheus").body
	for _, want := range []string{
		"# TYPE envoy_listener_downstream_cx_active gauge\n",
		`envoy_listener_downstream_cx_active{envoy_listener_address="` + addr + `"} 0` + "\n",
		`envoy_listener_worker_downstream_cx_active{envoy_listener_address="` + addr + `",envoy_worker_id="1"} 0` + "\n",
		"# TYPE envoy_http_downstream_cx_active gauge\n",
		`envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="ingress_http"} 0` + "\n",
		`envoy_http_downstream_cx_active{envoy_http_conn_manager_prefix="admin"} `,
		"envoy_server_state{} 0\n",
		"# TYPE envoy_cluster_manager_cds_update_success counter\n",
		"# TYPE envoy_h histogram\n",
		`envoy_h_bucket{le="+Inf"} 0` + "\n",
	} {
		if !strings.Contains(full, want) {
			t.Errorf("prometheus lacks %q", want)
		}
	}
	if strings.Contains(full, "text_value") {
		t.Error("text readouts shown without text_readouts")
	}
	if tr := call(t, "GET", e.AdminURL()+"/stats/prometheus?text_readouts").body; !strings.Contains(tr, `envoy_control_plane_identifier{text_value="abc"} 0`) {
		t.Error("text_readouts not shown")
	}
	// Contour's query: the filter matches raw Envoy names.
	contour := call(t, "GET", e.AdminURL()+`/stats/prometheus?filter=^http\..*\.downstream_cx_active$`).body
	if strings.Count(contour, "\nenvoy_http_downstream_cx_active{") != 2 || strings.Count(contour, "# TYPE") != 1 {
		t.Errorf("contour query got:\n%s", contour)
	}
}
