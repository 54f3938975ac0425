package envoyfake

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReleaseTable keeps releases.go a faithful list: every line from 1.9 to
// 1.38 once, in order, and each behaviour added by exactly one of them.
func TestReleaseTable(t *testing.T) {
	t.Parallel()
	var seen feature
	for i, l := range releases {
		if want := 9 + i; l.minor != want {
			t.Fatalf("releases[%d] is 1.%d, want 1.%d: the lines must be consecutive", i, l.minor, want)
		}
		if seen&l.adds != 0 {
			t.Errorf("1.%d adds a behaviour an earlier release added", l.minor)
		}
		seen |= l.adds
	}
	if last := releases[len(releases)-1].minor; last != 38 {
		t.Errorf("newest release got 1.%d, want 1.38 (the newest in envoy-admin.md §4)", last)
	}
	if all := featClustersFilter<<1 - 1; seen != all {
		t.Errorf("behaviours no release adds: %b", all&^seen)
	}
}

func TestVersionsRefused(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"1.8.0",                        // /server_info was not JSON yet
		"1.39.0",                       // newer than §4
		"1.36.7",                       // a patch the reference does not name
		"1.28.1",                       // likewise
		"abc/1.9.0-dev/Modified/DEBUG", // a development build, not a release
		"2.0.0",
		"1.12",
		"abc/1.x.0/Clean/RELEASE/BoringSSL",
		"abcdef",
	} {
		if e, err := Start(Options{Version: v}); err == nil {
			e.Close()
			t.Errorf("Start with Version %q succeeded, want it refused", v)
		} else if !strings.Contains(err.Error(), "Version") || !strings.Contains(err.Error(), "1.9.0 to 1.38.0") {
			t.Errorf("Version %q: error %q does not name the option and the valid releases", v, err)
		}
	}
}

// TestReleaseBehaviour checks each behaviour on both sides of the release
// that brought it (envoy-admin.md §4).
func TestReleaseBehaviour(t *testing.T) {
	t.Parallel()
	type want struct {
		getMutation        int  // GET /healthcheck/fail
		ready              int  // GET /ready
		drain              int  // POST /drain_listeners?graceful
		gracefulKeepsOpen  bool // the listener still accepts after it
		skipExitAlone      int  // POST /drain_listeners?skip_exit
		node, drainStrat   bool // in /server_info
		stateGauge, worker bool // server.state, listener.X.worker_0.* in /stats
		decodes            bool // %5E in a filter is ^
		promUsedOnly       bool
	}
	cases := []struct {
		version string
		want    want
	}{
		{"1.9.0", want{400, 404, 404, true, 404, false, false, false, false, false, false}},
		{"1.10.0", want{405, 404, 404, true, 404, false, false, false, false, false, true}},
		{"1.11.0", want{405, 200, 404, true, 404, false, false, true, false, false, true}},
		{"1.12.0", want{405, 200, 200, false, 200, false, false, true, true, false, true}},
		{"1.15.0", want{405, 200, 200, false, 200, false, true, true, true, false, true}},
		{"1.16.0", want{405, 200, 200, true, 200, true, true, true, true, true, true}},
		{"1.27.0", want{405, 200, 200, true, 200, true, true, true, true, true, true}},
		{"1.28.0", want{405, 200, 200, true, 400, true, true, true, true, true, true}},
		{"0123abcd/1.36.6/Clean/RELEASE/BoringSSL", want{405, 200, 200, true, 400, true, true, true, true, true, true}},
		{"1.38.0", want{405, 200, 200, true, 400, true, true, true, true, true, true}},
	}
	for _, c := range cases {
		t.Run(c.version, func(t *testing.T) {
			t.Parallel()
			w := c.want
			e := mustStart(t, Options{Version: c.version})
			base := e.AdminURL()
			if a := call(t, "GET", base+"/healthcheck/fail"); a.status != w.getMutation || e.State() != StateLive {
				t.Errorf("GET /healthcheck/fail got %d (state %s), want %d and no effect", a.status, e.State(), w.getMutation)
			}
			if a := call(t, "GET", base+"/ready"); a.status != w.ready {
				t.Errorf("GET /ready got %d, want %d", a.status, w.ready)
			}
			help := call(t, "GET", base+"/help").body
			if strings.Contains(help, "/ready:") != (w.ready == 200) || strings.Contains(help, "/drain_listeners") != (w.drain == 200) {
				t.Errorf("/help does not match the endpoints:\n%s", help)
			}
			si := call(t, "GET", base+"/server_info").body
			var info struct {
				Version string         `json:"version"`
				Options map[string]any `json:"command_line_options"`
				Node    *struct {
					BuildVersion struct {
						Version struct {
							Minor int `json:"minor_number"`
						} `json:"version"`
					} `json:"user_agent_build_version"`
				} `json:"node"`
			}
			if err := json.Unmarshal([]byte(si), &info); err != nil {
				t.Fatalf("server_info: %v", err)
			}
			if !strings.Contains(info.Version, "/1.") || (info.Node != nil) != w.node {
				t.Errorf("server_info version %q, node present %v; want node %v", info.Version, info.Node != nil, w.node)
			}
			if _, ok := info.Options["drain_strategy"]; ok != w.drainStrat {
				t.Errorf("drain_strategy present %v, want %v", ok, w.drainStrat)
			}
			stats := call(t, "GET", base+"/stats").body
			if strings.Contains(stats, "\nserver.state: ") != w.stateGauge || strings.Contains(stats, ".worker_0.") != w.worker {
				t.Errorf("stats got server.state %v, worker_0 %v; want %v, %v", strings.Contains(stats, "\nserver.state: "), strings.Contains(stats, ".worker_0."), w.stateGauge, w.worker)
			}
			if got := call(t, "GET", base+"/stats?filter=%5Eserver%5C.live%24").body; (got == "server.live: 1\n") != w.decodes {
				t.Errorf("percent-encoded filter got %q, want decoding %v", got, w.decodes)
			}
			prom := call(t, "GET", base+"/stats/prometheus?usedonly").body
			if strings.Contains(prom, "cds_update_rejected") == w.promUsedOnly {
				t.Errorf("prometheus usedonly honoured %v, want %v", !strings.Contains(prom, "cds_update_rejected"), w.promUsedOnly)
			}
			if a := call(t, "POST", base+"/drain_listeners?skip_exit"); a.status != w.skipExitAlone {
				t.Errorf("POST /drain_listeners?skip_exit got %d, want %d", a.status, w.skipExitAlone)
			}
			// A fresh fake: the skip_exit call may have stopped the listener.
			e = mustStart(t, Options{Version: c.version})
			if a := call(t, "POST", e.AdminURL()+"/drain_listeners?graceful"); a.status != w.drain {
				t.Errorf("POST /drain_listeners?graceful got %d, want %d", a.status, w.drain)
			}
			if open := !refused(e.ListenerAddr()); open != w.gracefulKeepsOpen {
				t.Errorf("listener accepting after ?graceful got %v, want %v", open, w.gracefulKeepsOpen)
			}
		})
	}
}
