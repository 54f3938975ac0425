package cli

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
	"unicode/utf8"
)

var subcommands = []string{"help", "version", "shutdown-manager", "drain", "doctor", "inject", "install"}

func TestSuggest(t *testing.T) {
	t.Parallel()
	inPath := func(name string) bool { return name == "drains" || name == "rain" }
	tests := []struct{ in, want string }{
		{"docter", "doctor"},  // substitution
		{"doctr", "doctor"},   // deletion
		{"doctorr", "doctor"}, // insertion
		{"odctor", "doctor"},  // transposition
		{"shutdown-manger", "shutdown-manager"},
		{"verison", "version"},
		{"injcet", "inject"},
		{"doctor", ""},   // the subcommand itself
		{"drains", ""},   // one edit from drain, but a program in PATH
		{"rain", ""},     // same
		{"dcotr", ""},    // two edits
		{"python", ""},   // nothing near
		{"./docter", ""}, // a path is always a program
		{"", ""},
		{"instal", "install"},
		{"inst", ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.in, subcommands, inPath); got != tt.want {
			t.Errorf("Suggest(%q) got %q, want %q", tt.in, got, tt.want)
		}
	}
	// Ambiguous: one edit from two subcommands says nothing.
	if got := Suggest("ab", []string{"abc", "abd"}, nil); got != "" {
		t.Errorf("Suggest(ab) got %q, want none (ambiguous)", got)
	}
}

func TestWrap(t *testing.T) {
	t.Parallel()
	long := "  ENVOY_LIFECYCLE_DRAIN_DELAY  5s  -  Wait after failing health checks, for endpoints and load balancers to stop sending new requests (Contour --check-delay, marin3r --check-drain-delay)."
	got := Wrap("Usage:\n"+long+"\nshort line", Width)
	lines := strings.Split(got, "\n")
	if lines[0] != "Usage:" || lines[len(lines)-1] != "short line" {
		t.Errorf("Wrap changed short lines:\n%s", got)
	}
	if len(lines) < 4 {
		t.Fatalf("Wrap did not wrap:\n%s", got)
	}
	hang := strings.Index(long, "Wait")
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n > Width {
			t.Errorf("line %d has %d columns: %q", i, n, l)
		}
		if i >= 2 && i < len(lines)-1 && !strings.HasPrefix(l, strings.Repeat(" ", hang)+strings.TrimLeft(l, " ")[:1]) {
			t.Errorf("continuation line %d not indented to column %d: %q", i, hang, l)
		}
	}
	// Nothing lost or reordered.
	if strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields("Usage:\n"+long+"\nshort line"), " ") {
		t.Errorf("Wrap lost words:\n%s", got)
	}
	// A word longer than the width stays whole, on its own line.
	word := strings.Repeat("x", 120)
	if got := Wrap("a "+word+" b", 100); got != "a\n"+word+"\nb" && got != "a "+word+"\nb" {
		t.Errorf("Wrap(long word) got %q", got)
	}
	// A paragraph without a table gap keeps its indentation.
	para := "    " + strings.Repeat("word ", 40)
	for i, l := range strings.Split(Wrap(para, 60), "\n") {
		if !strings.HasPrefix(l, "    w") || utf8.RuneCountInString(l) > 60 {
			t.Errorf("paragraph line %d: %q", i, l)
		}
	}
}

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-02T03:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		want            Version
		line            string
	}{
		{"plain go build", "dev", "none", bi,
			Version{"dev", "0123456789abcdef0123456789abcdef01234567", true, "2026-12-02T03:00:00Z", "go1.26.8"},
			"envoy-lifecycle dev (commit 0123456789ab, modified, go1.26.8)"},
		{"stamped", "v1.2.0", "abc1234", bi,
			Version{"v1.2.0", "abc1234", false, "", "go1.26.8"},
			"envoy-lifecycle v1.2.0 (commit abc1234, go1.26.8)"},
		{"go install module@version", "dev", "none", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}},
			Version{"v1.3.0", "none", false, "", "go1.26.8"},
			"envoy-lifecycle v1.3.0 (commit none, go1.26.8)"},
		{"no build info", "dev", "none", nil, Version{Version: "dev", Commit: "none"}, "envoy-lifecycle dev (commit none)"},
	}
	for _, tt := range tests {
		got := BuildVersion(tt.version, tt.commit, tt.bi)
		if got != tt.want {
			t.Errorf("%s: BuildVersion got %+v, want %+v", tt.name, got, tt.want)
		}
		if got.String() != tt.line {
			t.Errorf("%s: String got %q, want %q", tt.name, got.String(), tt.line)
		}
		var b bytes.Buffer
		if err := got.Write(&b, true); err != nil {
			t.Fatal(err)
		}
		var back Version
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || back != got {
			t.Errorf("%s: JSON %s does not round-trip: %v", tt.name, b.String(), err)
		}
	}
}
