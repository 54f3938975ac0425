package envoyfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Content types of admin answers (envoy-admin.md §1).
const (
	ctText = "text/plain; charset=UTF-8"
	ctJSON = "application/json"
	ctHTML = "text/html; charset=UTF-8"
)

// reply is an admin answer, computed (side effect included) before it is
// recorded and written.
type reply struct {
	status int
	ctype  string // empty means text/plain; charset=UTF-8
	body   string
	after  func() // runs once the answer was written (quitquitquit)
}

func text(status int, body string) reply { return reply{status: status, body: body} }

// endpoint is one admin handler. Mutating ones are POST-only and marked
// "(POST)" in /help.
type endpoint struct {
	path    string
	help    string
	mutates bool
	handle  func(e *Envoy, r *http.Request, q params) reply
}

// endpoints is release r's handler table; exact match on the normalised
// path.
func endpoints(r release) map[string]endpoint {
	ok := func(*Envoy, *http.Request, params) reply { return text(http.StatusOK, "OK\n") }
	list := []endpoint{
		{"/", "Admin home page", false, (*Envoy).handleHome},
		{"/clusters", "upstream cluster status", false, (*Envoy).handleClusters},
		{"/cpuprofiler", "enable/disable the CPU profiler", true, ok},
		{"/healthcheck/fail", "cause the server to fail health checks", true, (*Envoy).handleHealthcheckFail},
		{"/healthcheck/ok", "cause the server to pass health checks", true, (*Envoy).handleHealthcheckOK},
		{"/heapprofiler", "enable/disable the heap profiler", true, ok},
		{"/help", "print out list of admin commands", false, (*Envoy).handleHelp},
		{"/listeners", "print listener info", false, (*Envoy).handleListeners},
		{"/logging", "query/change logging levels", true, ok},
		{"/quitquitquit", "exit the server", true, (*Envoy).handleQuit},
		{"/reopen_logs", "reopen access logs", true, ok},
		{"/reset_counters", "reset all counters to zero", true, ok},
		{"/runtime_modify", "modify runtime values", true, ok},
		{"/server_info", "print server version/status information", false, (*Envoy).handleServerInfo},
		{"/stats", "print server stats", false, (*Envoy).handleStats},
		{"/stats/prometheus", "print server stats in prometheus format", false, (*Envoy).handlePrometheus},
		{"/stats/recentlookups/clear", "clear list of stat-name lookups and counter", true, ok},
		{"/stats/recentlookups/disable", "disable recording of reset stat-name lookup names", true, ok},
		{"/stats/recentlookups/enable", "enable recording of reset stat-name lookup names", true, ok},
	}
	if r.supports(featReady) {
		list = append(list, endpoint{"/ready", "print server state, return 200 if LIVE, otherwise return 503", false, (*Envoy).handleReady})
	}
	if r.supports(featDrainListeners) {
		list = append(list, endpoint{"/drain_listeners", "drain listeners", true, (*Envoy).handleDrainListeners})
	}
	m := make(map[string]endpoint, len(list))
	for _, ep := range list {
		m[ep.path] = ep
	}
	return m
}

// helpText is /help for the handlers eps; unknown paths get it after
// "invalid path. ".
func helpText(eps map[string]endpoint) string {
	paths := make([]string, 0, len(eps))
	for p := range eps {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("admin commands are:\n")
	for _, p := range paths {
		ep := eps[p]
		if ep.mutates {
			fmt.Fprintf(&b, "  %s (POST): %s\n", p, ep.help)
		} else {
			fmt.Fprintf(&b, "  %s: %s\n", p, ep.help)
		}
	}
	return b.String()
}

// ServeHTTP is the admin handler: exact-path dispatch, POST-only mutating
// endpoints, Envoy's fallback headers, and a record of every request.
func (e *Envoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	p := normalizePath(r.URL.Path)
	slot := e.rec.begin(at, r.Method, p, r.URL.RawQuery)
	rep := e.dispatch(r, p)
	e.rec.finish(slot, rep.status)
	e.logf("admin %s %s?%s -> %d", r.Method, p, r.URL.RawQuery, rep.status)
	writeAdmin(w, r, rep)
	if rep.after != nil {
		// After the handler returns, so the answer is complete on the wire.
		go rep.after()
	}
}

func (e *Envoy) dispatch(r *http.Request, p string) reply {
	ep, found := e.eps[p]
	if !found {
		return text(http.StatusNotFound, "invalid path. "+e.help)
	}
	if ep.mutates && r.Method != http.MethodPost {
		e.logf("admin path %q mutates state, method=%s rather than POST", p, r.Method)
		if !e.rel.supports(featMethodNotAllowed) {
			return text(http.StatusBadRequest, "Invalid request; POST required")
		}
		return text(http.StatusMethodNotAllowed, "Method "+r.Method+" not allowed, POST required.")
	}
	return ep.handle(e, r, requestParams(r, e.rel.supports(featPercentDecoding)))
}

// writeAdmin writes rep with Envoy's fallback headers. The flush makes the
// body chunked, as Envoy streams admin bodies instead of sending a length.
func writeAdmin(w http.ResponseWriter, r *http.Request, rep reply) {
	h := w.Header()
	ct := rep.ctype
	if ct == "" {
		ct = ctText
	}
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "no-cache, max-age=0")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Server", "envoy")
	w.WriteHeader(rep.status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, rep.body)
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// normalizePath does what Envoy's admin connection manager does before
// dispatch (normalize_path and merge_slashes are on): "//stats" is /stats,
// but a trailing slash is kept, so "/ready/" stays unknown.
func normalizePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	trailing := len(p) > 1 && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/.."))
	c := path.Clean(p)
	if trailing && c != "/" {
		c += "/"
	}
	return c
}

// params are admin query parameters: presence flags plus values.
type params map[string]string

func (q params) has(k string) bool { _, ok := q[k]; return ok }

// requestParams reads the query string, or, when there is none, a
// form-encoded body (AdminFilter::queryParams). decode is whether the
// release percent-decodes values (1.16 on).
func requestParams(r *http.Request, decode bool) params {
	if r.URL.RawQuery != "" {
		return parseParams(r.URL.RawQuery, decode)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" || r.Body == nil {
		return params{}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return params{}
	}
	return parseParams(string(b), decode)
}

// parseParams splits on '&' only and percent-decodes without turning '+'
// into a space, as Envoy does (url.ParseQuery would corrupt regexes like a+).
// The first occurrence of a key wins. Without decode, keys and values are
// taken as sent, as before Envoy 1.16.
func parseParams(raw string, decode bool) params {
	q := params{}
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if decode {
			k, v = unescape(k), unescape(v)
		}
		if _, dup := q[k]; !dup {
			q[k] = v
		}
	}
	return q
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s // Envoy leaves malformed escapes alone
}

func (e *Envoy) handleHome(*http.Request, params) reply {
	var b strings.Builder
	b.WriteString("<html><head><title>Envoy Admin</title></head><body>\n")
	for _, p := range []string{"/server_info", "/ready", "/stats", "/stats/prometheus", "/listeners", "/help"} {
		fmt.Fprintf(&b, "<a href=%q>%s</a><br>\n", p, strings.TrimPrefix(p, "/"))
	}
	b.WriteString("</body></html>\n")
	return reply{status: http.StatusOK, ctype: ctHTML, body: b.String()}
}

func (e *Envoy) handleHelp(*http.Request, params) reply { return text(http.StatusOK, e.help) }

func (e *Envoy) handleReady(*http.Request, params) reply {
	st := e.State()
	if st == StateLive {
		return text(http.StatusOK, st+"\n")
	}
	return text(http.StatusServiceUnavailable, st+"\n")
}

func (e *Envoy) handleHealthcheckFail(*http.Request, params) reply {
	if s := e.opts.FailHealthcheckStatus; s != 0 {
		return text(s, http.StatusText(s)+"\n")
	}
	e.hcFailed.Store(true)
	return text(http.StatusOK, "OK\n")
}

func (e *Envoy) handleHealthcheckOK(*http.Request, params) reply {
	e.hcFailed.Store(false)
	return text(http.StatusOK, "OK\n")
}

// handleDrainListeners: flags are presence-only (graceful=false is graceful),
// and a flag the release does not know is ignored. The fake's one traffic
// listener counts as INBOUND, so inboundonly drains it.
func (e *Envoy) handleDrainListeners(_ *http.Request, q params) reply {
	graceful := q.has("graceful") && e.rel.supports(featGracefulDrain)
	if q.has("skip_exit") && !graceful && e.rel.supports(featSkipExit) {
		return text(http.StatusBadRequest, "skip_exit requires graceful\n")
	}
	if graceful {
		e.traffic.drainGracefully()
	} else {
		e.traffic.stopListening()
	}
	return text(http.StatusOK, "OK\n")
}

func (e *Envoy) handleQuit(*http.Request, params) reply {
	rep := text(http.StatusOK, "OK\n")
	rep.after = e.exit
	return rep
}

func (e *Envoy) handleListeners(_ *http.Request, q params) reply {
	host, port := e.traffic.host, e.traffic.port
	if q["format"] == "json" {
		b, _ := json.Marshal(map[string]any{"listener_statuses": []any{map[string]any{
			"name": listenerName,
			"local_address": map[string]any{"socket_address": map[string]any{
				"address": host, "port_value": port,
			}},
		}}})
		return reply{status: http.StatusOK, ctype: ctJSON, body: string(b)}
	}
	return text(http.StatusOK, listenerName+"::"+e.traffic.addr+"\n")
}

// serverInfo is the ServerInfo proto in field order; proto JSON prints
// primitive fields even when zero, so nothing here uses omitempty.
type serverInfo struct {
	Version            string         `json:"version"`
	State              string         `json:"state"`
	HotRestartVersion  string         `json:"hot_restart_version"`
	CommandLineOptions map[string]any `json:"command_line_options"`
	UptimeCurrentEpoch string         `json:"uptime_current_epoch"`
	UptimeAllEpochs    string         `json:"uptime_all_epochs"`
	Node               *node          `json:"node,omitempty"` // from 1.16
}

type node struct {
	ID                    string         `json:"id"`
	Cluster               string         `json:"cluster"`
	Metadata              map[string]any `json:"metadata"`
	UserAgentName         string         `json:"user_agent_name"`
	UserAgentBuildVersion struct {
		Version struct {
			Major int `json:"major_number"`
			Minor int `json:"minor_number"`
			Patch int `json:"patch"`
		} `json:"version"`
	} `json:"user_agent_build_version"`
	Extensions         []any `json:"extensions"`
	ClientFeatures     []any `json:"client_features"`
	ListeningAddresses []any `json:"listening_addresses"`
}

func (e *Envoy) handleServerInfo(*http.Request, params) reply {
	now := time.Now()
	st := e.serverInfoState(now)
	if st != StateLive {
		switch e.opts.Garbage {
		case GarbageHTML:
			return reply{status: http.StatusOK, ctype: "text/html", body: "<html><body><h1>Envoy is starting</h1></body></html>\n"}
		case GarbageTruncated:
			full := e.serverInfoJSON(st, now)
			return reply{status: http.StatusOK, ctype: ctJSON, body: full[:len(full)/2]}
		case Garbage503:
			return text(http.StatusServiceUnavailable, "")
		case GarbageNonJSON:
			return text(http.StatusOK, "state: "+st+"\n")
		}
	}
	return reply{status: http.StatusOK, ctype: ctJSON, body: e.serverInfoJSON(st, now)}
}

func (e *Envoy) serverInfoJSON(state string, now time.Time) string {
	uptime := strconv.FormatInt(int64(now.Sub(e.start)/time.Second), 10) + "s"
	si := serverInfo{
		Version:           e.version,
		State:             state,
		HotRestartVersion: "disabled",
		CommandLineOptions: map[string]any{
			// encoding/json sorts map keys; field order is not significant in JSON.
			"base_id":                     "0", // uint64 is a string in proto JSON
			"concurrency":                 concurrency,
			"config_path":                 "/etc/envoy/envoy.yaml",
			"config_yaml":                 "",
			"allow_unknown_static_fields": false,
			"admin_address_path":          "",
			"local_address_ip_version":    "v4",
			"log_level":                   "info",
			"component_log_level":         "",
			"log_format":                  "[%Y-%m-%d %T.%e][%t][%l][%n] %v",
			"log_path":                    "",
			"hot_restart_version":         false,
			"service_cluster":             "",
			"service_node":                "",
			"service_zone":                "",
			"mode":                        "Serve",
			"disable_hot_restart":         true,
			"enable_mutex_tracing":        false,
			"restart_epoch":               0,
			"cpuset_threads":              false,
			"file_flush_interval":         "10s",
			"drain_time":                  "600s",
			"parent_shutdown_time":        "900s",
		},
		UptimeCurrentEpoch: uptime,
		UptimeAllEpochs:    uptime,
	}
	if e.rel.supports(featDrainStrategy) {
		si.CommandLineOptions["drain_strategy"] = "Gradual"
	}
	if e.rel.supports(featNode) {
		n := &node{ID: "envoyfake", Cluster: "envoyfake", Metadata: map[string]any{}, UserAgentName: "envoy"}
		v := &n.UserAgentBuildVersion.Version
		v.Major, v.Minor, v.Patch = 1, e.rel.minor, e.rel.patch
		n.Extensions, n.ClientFeatures, n.ListeningAddresses = []any{}, []any{}, []any{}
		si.Node = n
	}
	// Protobuf's pretty printer indents by one space and adds no trailing newline.
	b, err := json.MarshalIndent(si, "", " ")
	if err != nil {
		return "{}"
	}
	return string(b)
}
