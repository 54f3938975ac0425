package envoy

import (
	"bytes"
	"strings"
	"testing"
)

// addSeeds seeds f with every fixture plus hand-made garbage.
func addSeeds(f *testing.F, extra ...string) {
	f.Helper()
	for _, name := range []string{"stats.txt", "stats.json", "stats_istio_usedonly.txt", "server_info.json", "server_info_pre_initializing.json"} {
		f.Add(readFixture(f, name))
	}
	for _, s := range append([]string{
		"", "\x00", ": ", "a: 1", "a: 1\r\n", "a:: 1", "<html></html>", `{"stats":[`, `{"state":"LIVE"`,
	}, extra...) {
		f.Add([]byte(s))
	}
}

func checkStats(t *testing.T, stats []Stat) {
	t.Helper()
	for _, s := range stats {
		if s.Name == "" || strings.Contains(s.Name, ": ") {
			t.Fatalf("got invalid stat name %q", s.Name)
		}
	}
}

func FuzzParseStatsText(f *testing.F) {
	addSeeds(f, "h: P0(1,1) P25(2,2)", "t: \"x: 1\"", "x: 18446744073709551615")
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := ParseStatsText(bytes.NewReader(b))
		if err != nil && stats != nil {
			t.Fatalf("got stats %v with error %v", stats, err)
		}
		checkStats(t, stats)
		CountConnections(stats, DefaultConnSelector())
	})
}

func FuzzParseServerInfo(f *testing.F) {
	addSeeds(f, `{"state":""}`, `{"state":0}`, `"LIVE"`)
	f.Fuzz(func(t *testing.T, b []byte) {
		si, err := ParseServerInfo(bytes.NewReader(b))
		if err == nil && si.State == "" {
			t.Fatalf("got no error and an empty state for %q", b)
		}
		if err != nil && si != (ServerInfo{}) {
			t.Fatalf("got %+v with error %v", si, err)
		}
	})
}
