package envoyfake

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

func serverInfoState(tb testing.TB, e *Envoy) string {
	tb.Helper()
	a := call(tb, "GET", e.AdminURL()+"/server_info")
	if a.status != 200 {
		tb.Fatalf("server_info status got %d, want 200", a.status)
	}
	var si struct{ State string }
	if err := json.Unmarshal([]byte(a.body), &si); err != nil {
		tb.Fatalf("server_info: %v in %q", err, a.body)
	}
	return si.State
}

func wantReady(tb testing.TB, e *Envoy, status int, body string) {
	tb.Helper()
	a := call(tb, "GET", e.AdminURL()+"/ready")
	if a.status != status || a.body != body {
		tb.Errorf("/ready got %d %q, want %d %q", a.status, a.body, status, body)
	}
}

func TestServerInfoShape(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{Version: "abc/1.28.0/Clean/RELEASE/BoringSSL"})
	a := call(t, "GET", e.AdminURL()+"/server_info")
	if strings.HasSuffix(a.body, "\n") {
		t.Error("server_info ends with a newline; protobuf's printer adds none")
	}
	lines := strings.Split(a.body, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], ` "`) || strings.HasPrefix(lines[1], `  `) {
		t.Errorf("want 1-space indent, got second line %q", lines[1])
	}
	var si struct {
		Version            string
		State              string
		HotRestartVersion  string `json:"hot_restart_version"`
		CommandLineOptions struct {
			Concurrency int    `json:"concurrency"`
			HotRestart  *bool  `json:"hot_restart_version"`
			DrainTime   string `json:"drain_time"`
			BaseID      string `json:"base_id"`
		} `json:"command_line_options"`
		UptimeCurrentEpoch string `json:"uptime_current_epoch"`
		UptimeAllEpochs    string `json:"uptime_all_epochs"`
		Node               struct {
			ID                    string `json:"id"`
			UserAgentBuildVersion struct {
				Version struct {
					Minor int `json:"minor_number"`
				} `json:"version"`
			} `json:"user_agent_build_version"`
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(a.body), &si); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"version", si.Version, "abc/1.28.0/Clean/RELEASE/BoringSSL"},
		{"state", si.State, "LIVE"},
		{"hot_restart_version", si.HotRestartVersion, "disabled"},
		{"concurrency", si.CommandLineOptions.Concurrency, 2},
		{"command_line_options.hot_restart_version", si.CommandLineOptions.HotRestart != nil && !*si.CommandLineOptions.HotRestart, true},
		{"drain_time", si.CommandLineOptions.DrainTime, "600s"},
		{"base_id", si.CommandLineOptions.BaseID, "0"},
		{"node.id", si.Node.ID, "envoyfake"},
		{"minor_number", si.Node.UserAgentBuildVersion.Version.Minor, 28},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s got %v, want %v", c.name, c.got, c.want)
		}
	}
	if !strings.HasSuffix(si.UptimeCurrentEpoch, "s") || !strings.HasSuffix(si.UptimeAllEpochs, "s") {
		t.Errorf("uptimes got %q %q, want durations", si.UptimeCurrentEpoch, si.UptimeAllEpochs)
	}
}

func TestPreInitializingScript(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{PreInitializing: 2})
	wantReady(t, e, 503, "PRE_INITIALIZING\n")
	for i := 1; i <= 2; i++ {
		if st := serverInfoState(t, e); st != StatePreInitializing {
			t.Fatalf("server_info #%d got %s, want PRE_INITIALIZING", i, st)
		}
		if !e.LiveAt().IsZero() {
			t.Fatalf("LiveAt set during pre-init")
		}
	}
	wantReady(t, e, 503, "PRE_INITIALIZING\n") // /ready does not advance the script
	before := time.Now()
	if st := serverInfoState(t, e); st != StateLive {
		t.Fatalf("server_info #3 got %s, want LIVE", st)
	}
	if at := e.LiveAt(); at.Before(before) || at.After(time.Now()) {
		t.Errorf("LiveAt %v not within the third request", at)
	}
	wantReady(t, e, 200, "LIVE\n")
	if st := e.State(); st != StateLive {
		t.Errorf("State got %s, want LIVE", st)
	}
}

// TestLiveAfterIsExact checks every answer against LiveAt: an answer started
// after LiveAt must be LIVE, one finished before it must not be.
func TestLiveAfterIsExact(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{LiveAfter: 150 * time.Millisecond})
	liveAt := e.LiveAt()
	if liveAt.IsZero() {
		t.Fatal("LiveAt is zero")
	}
	seenInit := false
	testproc.WaitFor(t, "LIVE", func() bool {
		t0 := time.Now()
		st := serverInfoState(t, e)
		t1 := time.Now()
		switch st {
		case StateLive:
			if t1.Before(liveAt) {
				t.Fatalf("LIVE answered before LiveAt")
			}
			return true
		case StateInitializing:
			seenInit = true
			if !t0.Before(liveAt) {
				t.Fatalf("INITIALIZING answered after LiveAt")
			}
		default:
			t.Fatalf("state got %s", st)
		}
		return false
	})
	if !seenInit {
		t.Log("first answer already LIVE (slow start); exactness still held")
	}
	wantReady(t, e, 200, "LIVE\n")
}

func TestNeverLive(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{NeverLive: true})
	if st := serverInfoState(t, e); st != StateInitializing {
		t.Errorf("server_info got %s, want INITIALIZING", st)
	}
	wantReady(t, e, 503, "INITIALIZING\n")
	if !e.LiveAt().IsZero() {
		t.Error("LiveAt is set")
	}
	// Health-check failure does not make an uninitialised server DRAINING.
	call(t, "POST", e.AdminURL()+"/healthcheck/fail")
	wantReady(t, e, 503, "INITIALIZING\n")
	a := call(t, "GET", e.AdminURL()+"/stats?usedonly")
	if v, _ := statValue(a.body, "server.state"); v != "3" {
		t.Errorf("server.state got %q, want 3", v)
	}
	if _, ok := statValue(a.body, "listener_manager.workers_started"); ok {
		t.Error("workers_started shown with usedonly before init")
	}
}

func TestDrainingOnlyFromHealthcheckFail(t *testing.T) {
	t.Parallel()
	e := mustStart(t, Options{})
	if a := call(t, "POST", e.AdminURL()+"/drain_listeners?graceful"); a.status != 200 {
		t.Fatalf("drain got %d", a.status)
	}
	wantReady(t, e, 200, "LIVE\n") // drain_listeners does not change state

	if a := call(t, "POST", e.AdminURL()+"/healthcheck/fail"); a.status != 200 || a.body != "OK\n" {
		t.Fatalf("fail got %d %q", a.status, a.body)
	}
	wantReady(t, e, 503, "DRAINING\n")
	if st := serverInfoState(t, e); st != StateDraining {
		t.Errorf("server_info got %s, want DRAINING", st)
	}
	a := call(t, "GET", e.AdminURL()+"/stats")
	if v, _ := statValue(a.body, "server.state"); v != "1" {
		t.Errorf("server.state got %q, want 1", v)
	}
	if v, _ := statValue(a.body, "server.live"); v != "0" {
		t.Errorf("server.live got %q, want 0", v)
	}
	call(t, "POST", e.AdminURL()+"/healthcheck/fail") // idempotent
	wantReady(t, e, 503, "DRAINING\n")

	call(t, "POST", e.AdminURL()+"/healthcheck/ok")
	wantReady(t, e, 200, "LIVE\n")
	if st := e.State(); st != StateLive {
		t.Errorf("State got %s, want LIVE", st)
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mode   string
		status int
		ctype  string
		check  func(body string) bool
	}{
		{GarbageHTML, 200, "text/html", func(b string) bool { return strings.Contains(b, "<html>") }},
		{GarbageTruncated, 200, ctJSON, func(b string) bool { return strings.HasPrefix(b, "{") && !json.Valid([]byte(b)) }},
		{Garbage503, 503, ctText, func(b string) bool { return b == "" }},
		{GarbageNonJSON, 200, ctText, func(b string) bool { return b != "" && !json.Valid([]byte(b)) }},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			e := mustStart(t, Options{Garbage: tc.mode, PreInitializing: 1})
			a := call(t, "GET", e.AdminURL()+"/server_info")
			if a.status != tc.status || a.header.Get("Content-Type") != tc.ctype || !tc.check(a.body) {
				t.Errorf("got %d %q %q", a.status, a.header.Get("Content-Type"), a.body)
			}
			// Once LIVE, the answer is proper JSON.
			if st := serverInfoState(t, e); st != StateLive {
				t.Errorf("second server_info got %s, want LIVE", st)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]Options{
		"bad garbage":      {Garbage: "xml"},
		"negative live":    {LiveAfter: -time.Second},
		"negative preinit": {PreInitializing: -1},
		"bad status":       {FailHealthcheckStatus: 42},
		"bad upstream":     {Upstream: "nohostport"},
		"bad health path":  {HealthPath: "healthz"},
	} {
		if e, err := Start(o); err == nil {
			_ = e.Close()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}
