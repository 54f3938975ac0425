package envoyfake

import (
	"strings"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

const helpPrefix = "invalid path. admin commands are:\n"

func TestAdminContract(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	base := e.AdminURL()

	cases := []struct {
		name   string
		method string
		path   string
		status int
		body   string // exact body, unless prefix is set
		prefix string
		ctype  string // empty means text/plain; charset=UTF-8
	}{
		{"ready", "GET", "/ready", 200, "LIVE\n", "", ""},
		{"ready ignores method", "POST", "/ready", 200, "LIVE\n", "", ""},
		{"ready with trailing slash is unknown", "GET", "/ready/", 404, "", helpPrefix, ""},
		{"readyz is unknown", "GET", "/readyz", 404, "", helpPrefix, ""},
		{"merged slashes", "GET", "//ready", 200, "LIVE\n", "", ""},
		{"dot segments", "GET", "/stats/../ready", 200, "LIVE\n", "", ""},
		{"unknown path", "GET", "/nope", 404, "", helpPrefix, ""},
		{"unknown path POST", "POST", "/nope?x=1", 404, "", helpPrefix, ""},
		{"help", "GET", "/help", 200, "", "admin commands are:\n", ""},
		{"home", "GET", "/", 200, "", "<html>", ctHTML},
		{"server_info", "GET", "/server_info", 200, "", "{\n \"version\": ", ctJSON},
		{"server_info ignores method", "DELETE", "/server_info", 200, "", "{\n", ctJSON},
		{"healthcheck ok", "POST", "/healthcheck/ok", 200, "OK\n", "", ""},
		{"healthcheck fail GET", "GET", "/healthcheck/fail", 405, "Method GET not allowed, POST required.", "", ""},
		{"healthcheck fail PUT", "PUT", "/healthcheck/fail", 405, "Method PUT not allowed, POST required.", "", ""},
		{"healthcheck ok GET", "GET", "/healthcheck/ok", 405, "Method GET not allowed, POST required.", "", ""},
		{"quitquitquit GET", "GET", "/quitquitquit", 405, "Method GET not allowed, POST required.", "", ""},
		{"quitquitquit PUT", "PUT", "/quitquitquit", 405, "Method PUT not allowed, POST required.", "", ""},
		{"drain_listeners GET", "GET", "/drain_listeners", 405, "Method GET not allowed, POST required.", "", ""},
		{"drain_listeners GET graceful", "GET", "/drain_listeners?graceful", 405, "Method GET not allowed, POST required.", "", ""},
		{"drain skip_exit without graceful", "POST", "/drain_listeners?skip_exit", 400, "skip_exit requires graceful\n", "", ""},
		{"drain inboundonly skip_exit without graceful", "POST", "/drain_listeners?inboundonly&skip_exit", 400, "skip_exit requires graceful\n", "", ""},
		{"reset_counters GET", "GET", "/reset_counters", 405, "Method GET not allowed, POST required.", "", ""},
		{"reset_counters POST", "POST", "/reset_counters", 200, "OK\n", "", ""},
		{"logging GET", "GET", "/logging", 405, "Method GET not allowed, POST required.", "", ""},
		{"stats", "GET", "/stats", 200, "", `control_plane.identifier: "abc"` + "\n", ""},
		{"stats ignores method", "POST", "/stats", 200, "", `control_plane.identifier: "abc"` + "\n", ""},
		{"stats json", "GET", "/stats?format=json", 200, "", `{"stats":[`, ctJSON},
		{"stats prometheus", "GET", "/stats?format=prometheus", 200, "", "# TYPE ", ""},
		{"stats/prometheus", "GET", "/stats/prometheus", 200, "", "# TYPE ", ""},
		{"stats html", "GET", "/stats?format=html", 200, "", "<html>", ctHTML},
		{"stats bad format", "GET", "/stats?format=xml", 400, "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n", "", ""},
		{"stats bad regex", "GET", "/stats?filter=(", 400, "Invalid re2 regex", "", ""},
		{"stats bad type", "GET", "/stats?type=Foo", 400, "invalid &type= param", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, tc.method, base+tc.path)
			if a.status != tc.status {
				t.Errorf("status got %d, want %d (body %q)", a.status, tc.status, a.body)
			}
			if tc.prefix != "" {
				if !strings.HasPrefix(a.body, tc.prefix) {
					t.Errorf("body got %q, want prefix %q", a.body, tc.prefix)
				}
			} else if a.body != tc.body {
				t.Errorf("body got %q, want %q", a.body, tc.body)
			}
			wantCT := tc.ctype
			if wantCT == "" {
				wantCT = "text/plain; charset=UTF-8"
			}
			for h, want := range map[string]string{
				"Content-Type":           wantCT,
				"Cache-Control":          "no-cache, max-age=0",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := a.header.Get(h); got != want {
					t.Errorf("header %s got %q, want %q", h, got, want)
				}
			}
			if te := a.resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
				t.Errorf("transfer-encoding got %v, want [chunked]", te)
			}
		})
	}

	// None of the refused calls had a side effect.
	if st := e.State(); st != StateLive {
		t.Errorf("State got %s, want LIVE", st)
	}
	if testproc.IsClosed(e.Quit()) {
		t.Error("Quit closed after a non-POST /quitquitquit")
	}
	if refused(e.ListenerAddr()) {
		t.Error("listener stopped accepting after a refused /drain_listeners")
	}
	c := dial(t, e.ListenerAddr())
	testproc.WaitFor(t, "listener connection counted", func() bool { return e.ActiveConnections() == 1 })
	_ = c.Close()

	// Every request was recorded with its status.
	reqs := e.Requests()
	if len(reqs) != len(cases) {
		t.Fatalf("Requests got %d, want %d", len(reqs), len(cases))
	}
	for _, r := range reqs {
		if r.Status == 0 || r.At.IsZero() {
			t.Errorf("request %+v lacks status or time", r)
		}
	}
}

func TestHelpMarksMutatingEndpoints(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	a := call(t, "GET", e.AdminURL()+"/help")
	for _, want := range []string{
		"  /quitquitquit (POST): ",
		"  /healthcheck/fail (POST): ",
		"  /healthcheck/ok (POST): ",
		"  /drain_listeners (POST): ",
		"  /ready: ",
		"  /server_info: ",
		"  /stats: ",
		"  /stats/prometheus: ",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("help lacks %q:\n%s", want, a.body)
		}
	}
	nf := call(t, "GET", e.AdminURL()+"/nope")
	if nf.body != "invalid path. "+a.body {
		t.Errorf("404 body got %q, want %q", nf.body, "invalid path. "+a.body)
	}
}

func TestFailHealthcheckStatus(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{FailHealthcheckStatus: 500})
	if a := call(t, "POST", e.AdminURL()+"/healthcheck/fail"); a.status != 500 {
		t.Errorf("status got %d, want 500", a.status)
	}
	if a := call(t, "GET", e.AdminURL()+"/ready"); a.status != 200 || a.body != "LIVE\n" {
		t.Errorf("ready got %d %q, want 200 LIVE", a.status, a.body)
	}
	if a := call(t, "GET", e.AdminURL()+"/healthcheck/fail"); a.status != 405 {
		t.Errorf("GET status got %d, want 405 before the injected failure", a.status)
	}
}

func TestParamsFromFormBody(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	form := "application/x-www-form-urlencoded"
	a := callWith(t, testClient, "POST", e.AdminURL()+"/drain_listeners", form, "skip_exit")
	if a.status != 400 || a.body != "skip_exit requires graceful\n" {
		t.Errorf("body params: got %d %q, want 400", a.status, a.body)
	}
	// A query string wins over the body.
	a = callWith(t, testClient, "POST", e.AdminURL()+"/drain_listeners?graceful", form, "skip_exit")
	if a.status != 200 || a.body != "OK\n" {
		t.Errorf("query params: got %d %q, want 200 OK", a.status, a.body)
	}
}

func TestListeners(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	a := call(t, "GET", e.AdminURL()+"/listeners")
	if want := "ingress::" + e.ListenerAddr() + "\n"; a.body != want {
		t.Errorf("got %q, want %q", a.body, want)
	}
	j := call(t, "GET", e.AdminURL()+"/listeners?format=json")
	if !strings.Contains(j.body, `"listener_statuses"`) || j.header.Get("Content-Type") != ctJSON {
		t.Errorf("json got %q", j.body)
	}
}

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"/ready":             "/ready",
		"/ready/":            "/ready/",
		"//ready":            "/ready",
		"//stats":            "/stats",
		"/a/../ready":        "/ready",
		"/./ready":           "/ready",
		"/ready/.":           "/ready/",
		"/":                  "/",
		"//":                 "/",
		"/stats//prometheus": "/stats/prometheus",
	}
	for in, want := range cases {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) got %q, want %q", in, got, want)
		}
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw  string
		key  string
		has  bool
		want string
	}{
		{"graceful", "graceful", true, ""},
		{"graceful=false", "graceful", true, "false"},
		{"inboundonly&graceful&skip_exit", "skip_exit", true, ""},
		{"filter=a+b", "filter", true, "a+b"}, // '+' is not a space
		{"filter=a%7Cb", "filter", true, "a|b"},
		{"filter=%zz", "filter", true, "%zz"}, // malformed escapes stay
		{"filter=^server\\.state$", "filter", true, `^server\.state$`},
		{"a=1&a=2", "a", true, "1"}, // first wins
		{"usedonly&filter=x", "format", false, ""},
		{"a;b=1", "a;b", true, "1"}, // ';' is not a separator
	}
	// Before 1.16, values are taken as sent.
	if q := parseParams("filter=a%7Cb", false); q["filter"] != "a%7Cb" {
		t.Errorf("parseParams without decoding got %q, want a%%7Cb", q["filter"])
	}
	for _, tc := range cases {
		q := parseParams(tc.raw, true)
		if q.has(tc.key) != tc.has || q[tc.key] != tc.want {
			t.Errorf("parseParams(%q)[%q] got (%q, %v), want (%q, %v)", tc.raw, tc.key, q[tc.key], q.has(tc.key), tc.want, tc.has)
		}
	}
}
