package envoyfake

import (
	"bytes"
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fixed facts of the fake's configuration.
const (
	concurrency  = 2              // worker threads: the listener gauge splits over worker_0 and worker_1
	listenerName = "ingress"      // the traffic listener's name in /listeners
	httpPrefix   = "ingress_http" // the traffic listener's HTTP connection manager stat_prefix
)

type statKind int

const (
	kindCounter statKind = iota
	kindGauge
	kindText
	kindHistogram
)

// stat is one stat at render time. prom and labels are its Prometheus form
// after Envoy's tag extraction (prom has no envoy_ prefix yet).
type stat struct {
	name   string
	kind   statKind
	value  uint64
	text   string
	used   bool
	prom   string
	labels []label
}

type label struct{ k, v string }

// stateGauge maps a state to the server.state gauge (the proto enum value).
var stateGauge = map[string]uint64{StateLive: 0, StateDraining: 1, StatePreInitializing: 2, StateInitializing: 3}

// snapshot builds every stat from live values.
func (e *Envoy) snapshot(now time.Time) []stat {
	e.mu.Lock()
	st := e.stateLocked(now)
	initialized := e.initializedLocked(now)
	e.mu.Unlock()

	t := e.traffic
	lcx := t.cx.get()
	admin := e.adminCx.get()
	addrLabel := label{"envoy_listener_address", t.statAddr}
	lp := "listener." + t.statAddr + "."
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	live := st == StateLive

	all := []stat{
		{name: "control_plane.identifier", kind: kindText, text: "abc", used: true, prom: "control_plane_identifier"},

		{name: "cluster_manager.cds.update_success", kind: kindCounter, value: b2u(initialized), used: initialized, prom: "cluster_manager_cds_update_success"},
		{name: "cluster_manager.cds.update_rejected", kind: kindCounter, prom: "cluster_manager_cds_update_rejected"},
		{name: "listener_manager.lds.update_success", kind: kindCounter, value: b2u(initialized), used: initialized, prom: "listener_manager_lds_update_success"},
		{name: "listener_manager.lds.update_rejected", kind: kindCounter, prom: "listener_manager_lds_update_rejected"},
		{name: "listener_manager.workers_started", kind: kindGauge, value: b2u(initialized), used: initialized, prom: "listener_manager_workers_started"},

		{name: "server.state", kind: kindGauge, value: stateGauge[st], used: true, prom: "server_state"},
		{name: "server.live", kind: kindGauge, value: b2u(live), used: true, prom: "server_live"},
		{name: "server.concurrency", kind: kindGauge, value: concurrency, used: true, prom: "server_concurrency"},
		{name: "server.uptime", kind: kindGauge, value: uint64(now.Sub(e.start) / time.Second), used: true, prom: "server_uptime"},
		// Live here; real Envoy refreshes it only at each stats flush (§2.6).
		{name: "server.total_connections", kind: kindGauge, value: lcx, used: true, prom: "server_total_connections"},

		{name: "listener.admin.downstream_cx_active", kind: kindGauge, value: admin, used: e.adminCx.wasUsed(), prom: "listener_admin_downstream_cx_active"},
		{name: "listener.admin.downstream_cx_total", kind: kindCounter, value: e.adminCx.total.Load(), used: e.adminCx.wasUsed(), prom: "listener_admin_downstream_cx_total"},
		{name: "listener.admin.main_thread.downstream_cx_active", kind: kindGauge, value: admin, used: e.adminCx.wasUsed(), prom: "listener_admin_main_thread_downstream_cx_active"},
		{name: "http.admin.downstream_cx_active", kind: kindGauge, value: admin, used: e.adminCx.wasUsed(),
			prom: "http_downstream_cx_active", labels: []label{{"envoy_http_conn_manager_prefix", "admin"}}},

		{name: lp + "downstream_cx_active", kind: kindGauge, value: lcx, used: t.cx.wasUsed(),
			prom: "listener_downstream_cx_active", labels: []label{addrLabel}},
		{name: lp + "downstream_cx_total", kind: kindCounter, value: t.cx.total.Load(), used: t.cx.wasUsed(),
			prom: "listener_downstream_cx_total", labels: []label{addrLabel}},
		{name: lp + "worker_0.downstream_cx_active", kind: kindGauge, value: (lcx + 1) / 2, used: t.cx.wasUsed(),
			prom: "listener_worker_downstream_cx_active", labels: []label{addrLabel, {"envoy_worker_id", "0"}}},
		{name: lp + "worker_1.downstream_cx_active", kind: kindGauge, value: lcx / 2, used: t.cx.wasUsed(),
			prom: "listener_worker_downstream_cx_active", labels: []label{addrLabel, {"envoy_worker_id", "1"}}},

		// Every listener connection is owned by the HTTP connection manager.
		{name: "http." + httpPrefix + ".downstream_cx_active", kind: kindGauge, value: lcx, used: t.cx.wasUsed(),
			prom: "http_downstream_cx_active", labels: []label{{"envoy_http_conn_manager_prefix", httpPrefix}}},
		{name: "http." + httpPrefix + ".downstream_cx_total", kind: kindCounter, value: t.cx.total.Load(), used: t.cx.wasUsed(),
			prom: "http_downstream_cx_total", labels: []label{{"envoy_http_conn_manager_prefix", httpPrefix}}},
		{name: "http." + httpPrefix + ".downstream_rq_active", kind: kindGauge, value: t.rq.get(), used: t.rq.wasUsed(),
			prom: "http_downstream_rq_active", labels: []label{{"envoy_http_conn_manager_prefix", httpPrefix}}},
		{name: "http." + httpPrefix + ".downstream_rq_total", kind: kindCounter, value: t.rq.total.Load(), used: t.rq.wasUsed(),
			prom: "http_downstream_rq_total", labels: []label{{"envoy_http_conn_manager_prefix", httpPrefix}}},

		{name: "h", kind: kindHistogram, prom: "h"}, // never recorded
	}
	all = append(all, e.upstreamStats()...) // clusters.go
	// Stats later releases added: server.state with /ready (1.11), the
	// per-worker and main-thread listener stats with /drain_listeners (1.12).
	return slices.DeleteFunc(all, func(s stat) bool {
		switch {
		case s.name == "server.state":
			return !e.rel.supports(featReady)
		case strings.Contains(s.name, ".worker_") || strings.Contains(s.name, ".main_thread."):
			return !e.rel.supports(featDrainListeners)
		}
		return false
	})
}

// statsQuery is the parsed /stats parameters.
type statsQuery struct {
	filter   *regexp.Regexp
	usedOnly bool
	kind     string // "", Counters, Gauges, Histograms, TextReadouts
}

func (q statsQuery) keep(s stat) bool {
	if q.usedOnly && !s.used {
		return false
	}
	if q.filter != nil && !q.filter.MatchString(s.name) { // RE2 partial match
		return false
	}
	switch q.kind {
	case "Counters":
		return s.kind == kindCounter
	case "Gauges":
		return s.kind == kindGauge
	case "Histograms":
		return s.kind == kindHistogram
	case "TextReadouts":
		return s.kind == kindText
	}
	return true
}

// parseStatsQuery returns a non-nil reply for a bad parameter.
func parseStatsQuery(q params) (statsQuery, *reply) {
	sq := statsQuery{usedOnly: q.has("usedonly")}
	if f, ok := q["filter"]; ok {
		re, err := regexp.Compile(f)
		if err != nil {
			r := text(http.StatusBadRequest, "Invalid re2 regex")
			return sq, &r
		}
		sq.filter = re
	}
	if k, ok := q["type"]; ok {
		switch k {
		case "All":
		case "Counters", "Gauges", "Histograms", "TextReadouts":
			sq.kind = k
		default:
			r := text(http.StatusBadRequest, "invalid &type= param")
			return sq, &r
		}
	}
	return sq, nil
}

func (e *Envoy) handleStats(r *http.Request, q params) reply {
	sq, bad := parseStatsQuery(q)
	if bad != nil {
		return *bad
	}
	format := "text"
	if f, ok := q["format"]; ok {
		format = f
	}
	var kept []stat
	for _, s := range e.snapshot(time.Now()) {
		if sq.keep(s) {
			kept = append(kept, s)
		}
	}
	switch format {
	case "text":
		return text(http.StatusOK, renderText(kept))
	case "json":
		return reply{status: http.StatusOK, ctype: ctJSON, body: renderJSON(kept, q.has("pretty"))}
	case "prometheus":
		return e.handlePrometheus(r, q)
	case "html", "active-html":
		body := "<html><head><title>Envoy Admin</title></head><body><pre>\n" + html.EscapeString(renderText(kept)) + "</pre></body></html>\n"
		return reply{status: http.StatusOK, ctype: ctHTML, body: body}
	}
	return text(http.StatusBadRequest, "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n")
}

func (e *Envoy) handlePrometheus(_ *http.Request, q params) reply {
	sq, bad := parseStatsQuery(q)
	if bad != nil {
		return *bad
	}
	sq.kind = "" // type= is a /stats parameter only
	sq.usedOnly = sq.usedOnly && e.rel.supports(featPromUsedOnly)
	var kept []stat
	for _, s := range e.snapshot(time.Now()) {
		if sq.keep(s) && (s.kind != kindText || q.has("text_readouts")) {
			kept = append(kept, s)
		}
	}
	return text(http.StatusOK, renderPrometheus(kept))
}

// sortedKinds splits stats into Envoy's render order: text readouts, then
// counters and gauges merged, then histograms, each sorted by name.
func sortedKinds(stats []stat) (texts, scalars, hists []stat) {
	for _, s := range stats {
		switch s.kind {
		case kindText:
			texts = append(texts, s)
		case kindHistogram:
			hists = append(hists, s)
		default:
			scalars = append(scalars, s)
		}
	}
	for _, l := range [][]stat{texts, scalars, hists} {
		sort.Slice(l, func(i, j int) bool { return l[i].name < l[j].name })
	}
	return texts, scalars, hists
}

func renderText(stats []stat) string {
	texts, scalars, hists := sortedKinds(stats)
	var b strings.Builder
	for _, s := range texts {
		b.WriteString(s.name + ": " + strconv.Quote(s.text) + "\n")
	}
	for _, s := range scalars {
		b.WriteString(s.name + ": " + strconv.FormatUint(s.value, 10) + "\n")
	}
	for _, s := range hists {
		b.WriteString(s.name + ": No recorded values\n")
	}
	return b.String()
}

// quantiles are Envoy's supported_quantiles in the JSON histogram element.
var quantiles = []string{"0", "25", "50", "75", "90", "95", "99", "99.5", "99.9", "100"}

// renderJSON writes {"stats":[...]} by hand to keep Envoy's order and exact
// uint64 values; histograms go in one trailing element without "name".
func renderJSON(stats []stat, pretty bool) string {
	texts, scalars, hists := sortedKinds(stats)
	var elems []string
	for _, s := range texts {
		elems = append(elems, `{"name":`+jsonString(s.name)+`,"value":`+jsonString(s.text)+`}`)
	}
	for _, s := range scalars {
		elems = append(elems, `{"name":`+jsonString(s.name)+`,"value":`+strconv.FormatUint(s.value, 10)+`}`)
	}
	if len(hists) > 0 {
		var computed []string
		empty := strings.TrimSuffix(strings.Repeat(`{"interval":null,"cumulative":null},`, len(quantiles)), ",")
		for _, s := range hists {
			computed = append(computed, `{"name":`+jsonString(s.name)+`,"values":[`+empty+`]}`)
		}
		elems = append(elems, `{"histograms":{"supported_quantiles":[`+strings.Join(quantiles, ",")+
			`],"computed_quantiles":[`+strings.Join(computed, ",")+`]}}`)
	}
	out := `{"stats":[` + strings.Join(elems, ",") + `]}`
	if pretty {
		var buf bytes.Buffer
		if err := json.Indent(&buf, []byte(out), "", "  "); err == nil {
			return buf.String()
		}
	}
	return out
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// histogramBuckets are Envoy's default histogram bucket bounds.
var histogramBuckets = []string{"0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500",
	"5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000"}

// renderPrometheus writes text exposition 0.0.4: names get "envoy_", one
// "# TYPE" line per family; counters, gauges, text readouts, histograms.
func renderPrometheus(stats []stat) string {
	type family struct {
		name  string
		typ   string
		stats []stat
	}
	var groups [4]map[string]*family
	for _, s := range stats {
		if groups[s.kind] == nil {
			groups[s.kind] = map[string]*family{}
		}
		f := groups[s.kind][s.prom]
		if f == nil {
			typ := map[statKind]string{kindCounter: "counter", kindGauge: "gauge", kindText: "gauge", kindHistogram: "histogram"}[s.kind]
			f = &family{name: "envoy_" + s.prom, typ: typ}
			groups[s.kind][s.prom] = f
		}
		f.stats = append(f.stats, s)
	}
	var b strings.Builder
	for _, kind := range []statKind{kindCounter, kindGauge, kindText, kindHistogram} {
		names := make([]string, 0, len(groups[kind]))
		for n := range groups[kind] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f := groups[kind][n]
			sort.Slice(f.stats, func(i, j int) bool { return f.stats[i].name < f.stats[j].name })
			b.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
			for _, s := range f.stats {
				switch kind {
				case kindText:
					b.WriteString(f.name + promLabels(withLabel(s.labels, "text_value", s.text)) + " 0\n")
				case kindHistogram:
					for _, le := range append(histogramBuckets, "+Inf") {
						b.WriteString(f.name + "_bucket" + promLabels(withLabel(s.labels, "le", le)) + " 0\n")
					}
					b.WriteString(f.name + "_sum" + promLabels(s.labels) + " 0\n")
					b.WriteString(f.name + "_count" + promLabels(s.labels) + " 0\n")
				default:
					b.WriteString(f.name + promLabels(s.labels) + " " + strconv.FormatUint(s.value, 10) + "\n")
				}
			}
		}
	}
	return b.String()
}

// withLabel returns ls plus k=v in a new slice, never sharing ls's array.
func withLabel(ls []label, k, v string) []label {
	return append(slices.Clip(ls), label{k, v})
}

var promEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func promLabels(ls []label) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.k + `="` + promEscaper.Replace(l.v) + `"`
	}
	return "{" + strings.Join(parts, ",") + "}"
}
