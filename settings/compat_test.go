package settings

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestPeerBool: every value the peers accepted is accepted, with their
// meaning (only "true" is true), and anything but "true"/"false" warns once
// with the variable and what it was taken as. Item 1's reproductions
// included.
func TestPeerBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		def, want   bool
		warn        bool
	}{
		{"NEVER_KILL_ENVOY", "true", false, true, false},
		{"NEVER_KILL_ENVOY", "false", false, false, false},
		{"NEVER_KILL_ENVOY", "yes", false, false, true}, // envoy-preflight: anything but "true" is false
		{"NEVER_KILL_ENVOY", "1", false, false, true},
		{"NEVER_KILL_ENVOY", "TRUE", false, false, true},
		{"NEVER_KILL_ENVOY", " true", false, false, true},
		{"START_WITHOUT_ENVOY", "", false, false, false}, // Helm's empty string: unset
		{"START_WITHOUT_ENVOY", "garbage", false, false, true},
		{"SCUTTLE_LOGGING", "0", true, true, true}, // only "false" turned scuttle's logs off
		{"SCUTTLE_LOGGING", "false", true, false, false},
		{"ENVOY_PREFLIGHT_LOGGING", "no", true, true, true},
	}
	for _, tt := range tests {
		m := map[string]string{}
		if tt.value != "" || tt.name == "START_WITHOUT_ENVOY" {
			m[tt.name] = tt.value
		}
		e := Env{Lookup: mapLookup(m)}
		got := e.PeerBool(tt.name, tt.def)
		if got != tt.want {
			t.Errorf("PeerBool(%s=%q) got %v, want %v", tt.name, tt.value, got, tt.want)
		}
		if (len(e.Warnings) == 1) != tt.warn || len(e.Warnings) > 1 {
			t.Errorf("PeerBool(%s=%q) warnings got %v, want warning %v", tt.name, tt.value, e.Warnings, tt.warn)
			continue
		}
		if tt.warn {
			w := e.Warnings[0].String()
			if !strings.HasPrefix(w, tt.name+"=") || !strings.Contains(w, "taken as "+map[bool]string{true: "true", false: "false"}[tt.want]) {
				t.Errorf("PeerBool(%s=%q) warning %q does not name the variable and what it was taken as", tt.name, tt.value, w)
			}
		}
	}
}

func TestPeerYes(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]struct{ on, warn bool }{
		"yes": {true, false}, "no": {false, false}, "debug": {false, true}, "true": {false, true}, "": {false, false},
	} {
		e := Env{Lookup: mapLookup(map[string]string{"LOG": v})}
		if got := e.PeerYes("LOG"); got != want.on || (len(e.Warnings) == 1) != want.warn {
			t.Errorf("PeerYes(LOG=%q) got %v, %v, want %v, warning %v", v, got, e.Warnings, want.on, want.warn)
		}
	}
}

func TestPeerDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		def         time.Duration
		positive    bool
		want        time.Duration
		set, warn   bool
	}{
		{"WAIT_FOR_ENVOY_TIMEOUT", "30s", 0, false, 30 * time.Second, true, false},
		{"WAIT_FOR_ENVOY_TIMEOUT", "1m30s", 0, false, 90 * time.Second, true, false},
		{"WAIT_FOR_ENVOY_TIMEOUT", "0", 0, false, 0, true, false},
		{"WAIT_FOR_ENVOY_TIMEOUT", "", 0, false, 0, false, false}, // Helm's empty string
		{"WAIT_FOR_ENVOY_TIMEOUT", "soon", 0, false, 0, false, true},
		{"WAIT_FOR_ENVOY_TIMEOUT", "-5s", 0, false, 0, true, true},
		{"WAIT_FOR_ENVOY_TIMEOUT", "-5", 0, false, 0, false, true}, // not a Go duration: scuttle ignored it
		{"WAIT_FOR_ENVOY_TIMEOUT", "30", 0, false, 30 * time.Second, true, true},
		{"QUIT_WITHOUT_ENVOY_TIMEOUT", "2.5", 0, false, 2500 * time.Millisecond, true, true},
		{"QUIT_REQUEST_TIMEOUT", "0s", 5 * time.Second, true, 5 * time.Second, false, true},
		{"QUIT_REQUEST_TIMEOUT", "2s", 5 * time.Second, true, 2 * time.Second, true, false},
		{"WAIT_FOR_ENVOY_TIMEOUT", "100h", 0, false, 0, false, true},
	}
	for _, tt := range tests {
		e := Env{Lookup: mapLookup(map[string]string{tt.name: tt.value})}
		got, set := e.PeerDuration(tt.name, tt.def, tt.positive)
		if got != tt.want || set != tt.set || (len(e.Warnings) == 1) != tt.warn || len(e.Warnings) > 1 {
			t.Errorf("PeerDuration(%s=%q) got %v, set %v, warnings %v; want %v, set %v, warning %v",
				tt.name, tt.value, got, set, e.Warnings, tt.want, tt.set, tt.warn)
		}
		if e.Set(tt.name) != tt.set {
			t.Errorf("PeerDuration(%s=%q) Set got %v, want %v", tt.name, tt.value, e.Set(tt.name), tt.set)
		}
		if tt.warn && len(e.Warnings) == 1 && e.Warnings[0].Name != tt.name {
			t.Errorf("PeerDuration(%s=%q) warning names %s", tt.name, tt.value, e.Warnings[0].Name)
		}
	}
}

// TestInheritedTable: every inherited variable has its peers, their rule
// and ours; the README table comes from it.
func TestInheritedTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, v := range InheritedVars {
		if seen[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		seen[v.Name] = true
		if len(v.Peers) == 0 || v.Peer == "" || v.Ours == "" || v.Def == "" || v.Kind == "" {
			t.Errorf("%s: incomplete entry %+v", v.Name, v)
		}
	}
	var b bytes.Buffer
	WriteMigrationTable(&b)
	for _, v := range InheritedVars {
		if strings.Count(b.String(), "`"+v.Name+"` (") != 1 {
			t.Errorf("migration table lists %s %d times, want once:\n%s", v.Name, strings.Count(b.String(), "`"+v.Name+"` ("), b.String())
		}
	}
	if !strings.Contains(b.String(), "| `START_WITHOUT_ENVOY` (envoy-preflight, envoy-preflight fork, scuttle, kvij/scuttle)<br>`NEVER_KILL_ENVOY` (envoy-preflight)<br>") {
		t.Errorf("migration table does not group the booleans:\n%s", b.String())
	}
}
