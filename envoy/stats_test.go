package envoy

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("cannot read fixture: %v", err)
	}
	return b
}

func statMap(stats []Stat) map[string]uint64 {
	m := make(map[string]uint64, len(stats))
	for _, s := range stats {
		m[s.Name] = s.Value
	}
	return m
}

func TestParseStatsTextFixture(t *testing.T) {
	t.Parallel()
	stats, err := ParseStatsText(bytes.NewReader(readFixture(t, "stats.txt")))
	if err != nil {
		t.Fatalf("ParseStatsText: %v", err)
	}
	// 56 lines: 4 text readouts and 4 histograms skipped.
	if got, want := len(stats), 48; got != want {
		t.Fatalf("ParseStatsText got %d stats, want %d", got, want)
	}
	m := statMap(stats)
	for name, want := range map[string]uint64{
		"listener.0.0.0.0_8080.downstream_cx_active":                                  3,
		"listener.[__]_8443.downstream_cx_active":                                     2,
		"cluster.outbound|8080||backend.default.svc.cluster.local.upstream_cx_active": 4,
		"http.ingress_http.downstream_rq_completed":                                   math.MaxUint64,
		"server.state": 0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("stat %s got %d (present %v), want %d", name, got, ok, want)
		}
	}
	for _, skipped := range []string{
		"server.version_text", "control_plane.identifier",
		"cluster.xds-grpc.upstream_cx_connect_ms", "http.inbound_0.0.0.0_8080.downstream_rq_time",
	} {
		if _, ok := m[skipped]; ok {
			t.Errorf("stat %s got parsed, want skipped (text readout or histogram)", skipped)
		}
	}
}

func TestCountConnectionsFixtures(t *testing.T) {
	t.Parallel()
	parse := map[string]func([]byte) ([]Stat, error){
		"text": func(b []byte) ([]Stat, error) { return ParseStatsText(bytes.NewReader(b)) },
	}
	tests := []struct {
		name        string
		fixture     string
		format      string
		sel         Selector
		wantSum     uint64
		wantMatched int
	}{
		// 15006 (6) + 8080 (3) + [__]_8443 (2) + tcp_redis (4). Excluded:
		// 15001 7, 15020 2, 15021 1, 15090 1, 127.0.0.1_15000 1, admin 1,
		// envoy_internal_x 9, and every worker_N / main_thread sub-stat.
		{name: "text conns", fixture: "stats.txt", format: "text", sel: DefaultConnSelector(), wantSum: 15, wantMatched: 4},
		// inbound 8080 (4) + ingress_http (2); http.admin (1) excluded.
		{name: "text requests", fixture: "stats.txt", format: "text", sel: DefaultRequestSelector(), wantSum: 6, wantMatched: 2},
		// Istio's own query: only 15006 (3) counts.
		{name: "istio usedonly conns", fixture: "stats_istio_usedonly.txt", format: "text", sel: DefaultConnSelector(), wantSum: 3, wantMatched: 1},
		{name: "istio usedonly requests", fixture: "stats_istio_usedonly.txt", format: "text", sel: DefaultRequestSelector(), wantSum: 0, wantMatched: 0},
		{name: "nil include", fixture: "stats.txt", format: "text", sel: Selector{}, wantSum: 0, wantMatched: 0},
		{name: "no exclude", fixture: "stats_istio_usedonly.txt", format: "text",
			sel:     Selector{Include: regexp.MustCompile(`^listener\.admin\.downstream_cx_active$`)},
			wantSum: 1, wantMatched: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stats, err := parse[tt.format](readFixture(t, tt.fixture))
			if err != nil {
				t.Fatalf("parse %s: %v", tt.fixture, err)
			}
			sum, matched := CountConnections(stats, tt.sel)
			if sum != tt.wantSum || matched != tt.wantMatched {
				t.Fatalf("CountConnections got (%d, %d), want (%d, %d)", sum, matched, tt.wantSum, tt.wantMatched)
			}
		})
	}
}

func TestCountConnectionsSaturates(t *testing.T) {
	t.Parallel()
	stats := []Stat{
		{Name: "listener.a_1.downstream_cx_active", Value: math.MaxUint64 - 1},
		{Name: "listener.b_2.downstream_cx_active", Value: 5},
	}
	sum, matched := CountConnections(stats, DefaultConnSelector())
	if sum != math.MaxUint64 || matched != 2 {
		t.Fatalf("CountConnections got (%d, %d), want (%d, 2)", sum, matched, uint64(math.MaxUint64))
	}
}

func TestDefaultConnSelectorNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"listener.0.0.0.0_8080.downstream_cx_active", true},
		{"listener.0.0.0.0_15006.downstream_cx_active", true},
		{"listener.[__]_8443.downstream_cx_active", true},
		{"listener.10.0.0.1_9080.downstream_cx_active", true},
		{"listener.10.0.0.1_115001.downstream_cx_active", true},
		{"listener.my_tcp.downstream_cx_active", true},
		{"listener.0.0.0.0_15001.downstream_cx_active", false},
		{"listener.0.0.0.0_15000.downstream_cx_active", false},
		{"listener.0.0.0.0_15020.downstream_cx_active", false},
		{"listener.0.0.0.0_15021.downstream_cx_active", false},
		{"listener.0.0.0.0_15090.downstream_cx_active", false},
		{"listener.[__]_15090.downstream_cx_active", false},
		{"listener.admin.downstream_cx_active", false},
		{"listener.admin.main_thread.downstream_cx_active", false},
		{"listener.0.0.0.0_8080.worker_0.downstream_cx_active", false},
		{"listener.0.0.0.0_8080.worker_12.downstream_cx_active", false},
		{"listener.0.0.0.0_8080.main_thread.downstream_cx_active", false},
		{"listener.envoy_internal_x.downstream_cx_active", false},
		{"listener.0.0.0.0_8080.downstream_cx_total", false},
		{"http.ingress_http.downstream_cx_active", false},
		{"listener..downstream_cx_active", false},
	}
	for _, tt := range tests {
		_, matched := CountConnections([]Stat{{Name: tt.name, Value: 1}}, DefaultConnSelector())
		if got := matched == 1; got != tt.want {
			t.Errorf("DefaultConnSelector on %q got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSelectorFilterCoversInclude(t *testing.T) {
	t.Parallel()
	// The server-side filter must keep every stat Include selects.
	for name, sel := range map[string]Selector{"conn": DefaultConnSelector(), "request": DefaultRequestSelector()} {
		f := regexp.MustCompile(sel.Filter)
		for _, fixture := range []string{"stats.txt", "stats_istio_usedonly.txt"} {
			stats, err := ParseStatsText(bytes.NewReader(readFixture(t, fixture)))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range stats {
				if sel.Include.MatchString(s.Name) && !f.MatchString(s.Name) {
					t.Errorf("%s selector: filter %q drops included stat %q", name, sel.Filter, s.Name)
				}
			}
		}
	}
}

func TestParseStatsTextLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []Stat
		wantErr bool
	}{
		{name: "empty", in: ""},
		{name: "reference sample", in: "t: \"hello world\"\nc1: 10\nc2: 20\nh1: P0(200,200) P25(202.5,202.5)\nh2: No recorded values\n",
			want: []Stat{{"c1", 10}, {"c2", 20}}},
		{name: "crlf and no final newline", in: "a: 1\r\nb: 2", want: []Stat{{"a", 1}, {"b", 2}}},
		{name: "split on first separator", in: "a: b: 3\n", want: nil},
		{name: "negative and float", in: "a: -1\nb: 1.5\nc: 1e3\nd: 0x10\n"},
		{name: "overflow", in: "a: 18446744073709551616\n"},
		{name: "max uint64", in: "a: 18446744073709551615\n", want: []Stat{{"a", math.MaxUint64}}},
		{name: "empty name", in: ": 5\n"},
		{name: "no space after colon", in: "a:5\n"},
		{name: "html", in: "<html><body><h1>503 Service Unavailable</h1></body></html>\n"},
		{name: "binary", in: "\x00\x01\xff\xfe: \x00\n\x89PNG\r\n\x1a\n"},
		{name: "line too long", in: "a: 1\n" + strings.Repeat("x", MaxStatsLine+1) + ": 1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStatsText(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatsText error got %v, want error %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseStatsText got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("ParseStatsText got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestParseServerInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    ServerInfo
		wantErr bool
	}{
		{name: "fixture live", in: string(readFixture(t, "server_info.json")),
			want: ServerInfo{State: StateLive, Version: "b050513e840aa939a01f89b07c162f00ab3150eb/1.36.6/Clean/RELEASE/BoringSSL", Uptime: 6 * time.Second}},
		{name: "fixture pre-initializing", in: string(readFixture(t, "server_info_pre_initializing.json")),
			want: ServerInfo{State: StatePreInitializing, Version: "b050513e840aa939a01f89b07c162f00ab3150eb/1.36.6/Clean/RELEASE/BoringSSL"}},
		{name: "state only", in: `{"state":"DRAINING"}`, want: ServerInfo{State: StateDraining, Uptime: -1}},
		{name: "missing state", in: `{"version":"x"}`, wantErr: true},
		{name: "empty state", in: `{"state":""}`, wantErr: true},
		{name: "numeric state", in: `{"state":0}`, wantErr: true},
		{name: "pre-1.9 string", in: `"b050513e/1.8.0/Clean/RELEASE"`, wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "truncated", in: `{"version": "abc", "sta`, wantErr: true},
		{name: "html", in: "<!DOCTYPE html><html></html>", wantErr: true},
		{name: "ready body", in: "LIVE\n", wantErr: true},
		{name: "null", in: "null", wantErr: true},
		{name: "binary", in: "\x00\x01\x02", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseServerInfo(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseServerInfo error got %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseServerInfo got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatsPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		q    StatsQuery
		want string
	}{
		{name: "plain", q: StatsQuery{}, want: "/stats"},
		{name: "usedonly", q: StatsQuery{UsedOnly: true}, want: "/stats?usedonly"},
		{name: "filter", q: StatsQuery{Filter: "downstream_cx_active$"}, want: "/stats?filter=downstream_cx_active$"},
		{name: "istio", q: StatsQuery{Filter: "downstream_cx_active$", UsedOnly: true}, want: "/stats?usedonly&filter=downstream_cx_active$"},
		{name: "regex metachars raw", q: StatsQuery{Filter: `^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`},
			want: `/stats?filter=^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`},
		{name: "plus raw", q: StatsQuery{Filter: `^listener\.(.+)\.x$`}, want: `/stats?filter=^listener\.(.+)\.x$`},
		{name: "query breakers encoded", q: StatsQuery{Filter: "a&b #c%d\n\xff"}, want: "/stats?filter=a%26b%20%23c%25d%0A%FF"},
	}
	for _, tt := range tests {
		if got := statsPath(tt.q); got != tt.want {
			t.Errorf("%s: statsPath got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDrainPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		o    DrainOptions
		want string
	}{
		{DrainOptions{}, "/drain_listeners"},
		{DrainOptions{Graceful: true}, "/drain_listeners?graceful"},
		{DrainOptions{InboundOnly: true}, "/drain_listeners?inboundonly"},
		{DrainOptions{Graceful: true, InboundOnly: true}, "/drain_listeners?graceful&inboundonly"},
		{DrainOptions{Graceful: true, InboundOnly: true, SkipExit: true}, "/drain_listeners?graceful&inboundonly&skip_exit"},
		{DrainOptions{Graceful: true, SkipExit: true}, "/drain_listeners?graceful&skip_exit"},
		{DrainOptions{SkipExit: true}, "/drain_listeners?skip_exit"},
	}
	for _, tt := range tests {
		if got := drainPath(tt.o); got != tt.want {
			t.Errorf("drainPath(%+v) got %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		e    StatusError
		want string
	}{
		{name: "body", e: StatusError{"POST", "/healthcheck/fail", 500, "boom\n"}, want: "POST /healthcheck/fail: status 500: boom"},
		{name: "no body", e: StatusError{"GET", "/server_info", 503, ""}, want: "GET /server_info: status 503"},
		{name: "space body", e: StatusError{"GET", "/server_info", 503, " \n"}, want: "GET /server_info: status 503"},
		{name: "405", e: StatusError{"GET", "/quitquitquit", 405, "Method GET not allowed, POST required."},
			want: "GET /quitquitquit: status 405: Method GET not allowed, POST required."},
		{name: "long body cut at 200 bytes", e: StatusError{"POST", "/x", 404, long}, want: "POST /x: status 404: " + long[:200]},
		{name: "invalid utf-8 cut", e: StatusError{"POST", "/x", 500, strings.Repeat("a", 199) + "é"}, want: "POST /x: status 500: " + strings.Repeat("a", 199)},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%s: Error() got %q, want %q", tt.name, got, tt.want)
		}
	}
}
