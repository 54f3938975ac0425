package settings

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The peers whose variables we inherit, as the README names them.
const (
	Preflight     = "envoy-preflight"
	PreflightFork = "envoy-preflight fork"
	Scuttle       = "scuttle"
	KvijScuttle   = "kvij/scuttle"
	PrestopSide   = "k8s-prestop-sidecar"
)

// Kinds of inherited variables, each read by its peers' one rule.
const (
	KindFlag     = "flag"     // only "true" is true, only "false" false, else the default
	KindYes      = "yes"      // only "yes" is true (k8s-prestop-sidecar's LOG)
	KindDuration = "duration" // Go durations; empty or unparsable: the default
	KindURL      = "URL"
	KindURLs     = "URLs"
	KindPort     = "port"
)

// Inherited is one variable a peer tool defined, and how each side reads it.
// The table drives PeerBool's and PeerDuration's messages and the README's
// migration table (a test keeps them equal).
type Inherited struct {
	Name  string
	Kind  string
	Def   string   // the peers' default
	Peers []string // who had it
	Peer  string   // what the peers accepted and how they read it
	Ours  string   // what we do with those values
}

// InheritedVars is every inherited variable.
var InheritedVars = []Inherited{
	flagVar("START_WITHOUT_ENVOY", "false", Preflight, PreflightFork, Scuttle, KvijScuttle),
	flagVar("NEVER_KILL_ENVOY", "false", Preflight),
	flagVar("ALWAYS_KILL_ENVOY", "false", Preflight),
	flagVar("NEVER_KILL_ISTIO", "false", PreflightFork, Scuttle, KvijScuttle),
	flagVar("NEVER_KILL_ISTIO_ON_FAILURE", "false", PreflightFork, Scuttle, KvijScuttle),
	flagVar("ISTIO_FALLBACK_PKILL", "false", PreflightFork, Scuttle),
	flagVar("GENERIC_QUIT_ONLY", "false", KvijScuttle),
	flagVar("USE_ISTIO_ENDPOINT", "false", PreflightFork),
	flagVar("ENVOY_PREFLIGHT_LOGGING", "true", PreflightFork),
	flagVar("SCUTTLE_LOGGING", "true", Scuttle, KvijScuttle),
	durVar("WAIT_FOR_ENVOY_TIMEOUT", "0 (no limit)", "0 or negative: no limit. Our default when neither timeout is set: QUIT_WITHOUT_ENVOY_TIMEOUT 10m", Scuttle, KvijScuttle),
	durVar("QUIT_WITHOUT_ENVOY_TIMEOUT", "0 (no limit)", "0 or negative: no limit. Our default when neither timeout is set: 10m", Scuttle, KvijScuttle),
	durVar("QUIT_REQUEST_TIMEOUT", "5s", "0 or negative (every quit request would fail at once): 5s", KvijScuttle),
	{Name: "ENVOY_ADMIN_API", Kind: KindURL, Def: "unset", Peers: []string{Preflight, PreflightFork, Scuttle, KvijScuttle},
		Peer: "any string; empty: unset (envoy-preflight: set but empty polled \"/server_info\" forever); a non-URL was polled forever",
		Ours: "empty: unset; " + ValidAdmin + "; anything else exits 64 at start (the peers hung instead)"},
	{Name: "ENVOY_KILL_API", Kind: KindURL, Def: "ENVOY_ADMIN_API/quitquitquit", Peers: []string{Preflight},
		Peer: "any string, POSTed; a non-URL failed silently (the fork only logs an error)",
		Ours: "empty: unset; " + ValidHTTPURL + "; anything else exits 64 at start"},
	{Name: "ISTIO_QUIT_API", Kind: KindURL, Def: "unset", Peers: []string{PreflightFork, Scuttle, KvijScuttle},
		Peer: "any string; /quitquitquit appended and POSTed", Ours: "empty: unset; " + ValidAdmin + "; anything else exits 64 at start"},
	{Name: "GENERIC_QUIT_ENDPOINTS", Kind: KindURLs, Def: "none", Peers: []string{PreflightFork, Scuttle, KvijScuttle},
		Peer: "comma-separated, each trimmed and POSTed; a bad one failed and was logged",
		Ours: "the same; empty items are skipped; a bad one is skipped with a warning"},
	seedVar("PORT", KindPort, "8080", "a port number (anything else failed to listen)", "SHUTDOWN_MANAGER_PORT", "a port number"),
	seedVar("LOG", KindYes, "no", `only "yes" logs hits; anything else (LOG=debug, LOG=true) does not`, "SHUTDOWN_MANAGER_LOG_HITS", `"yes" or "no"`),
	seedVar("INTERVAL", KindDuration, "10s", "Go durations; anything else crashed at start", "SHUTDOWN_MANAGER_INTERVAL", "a duration"),
	seedVar("COOLDOWN", KindDuration, "10s", "Go durations; anything else crashed at start", "SHUTDOWN_MANAGER_COOLDOWN", "a duration"),
}

func flagVar(name, def string, peers ...string) Inherited {
	other := "false"
	if def == "false" {
		other = "true"
	}
	return Inherited{Name: name, Kind: KindFlag, Def: def, Peers: peers,
		Peer: fmt.Sprintf(`only "true" and "false"; anything else, "" and "%s" included, is %s`, strings.ToUpper(other), def),
		Ours: `the same (never an error), with one warning for any value but "true" and "false"`}
}

// seedVar is one of k8s-prestop-sidecar's bare names, which the shutdown
// manager reads only when the value can mean what it meant there.
func seedVar(name, kind, def, peer, prefixed, what string) Inherited {
	return Inherited{Name: name, Kind: kind, Def: def, Peers: []string{PrestopSide}, Peer: peer,
		Ours: "shutdown-manager only; " + prefixed + " or the flag wins; a value that is not " + what +
			" is ignored with a warning (probably another container's, through envFrom); the start-up log says which name won"}
}

func durVar(name, def, ours string, peers ...string) Inherited {
	return Inherited{Name: name, Kind: KindDuration, Def: def, Peers: peers,
		Peer: "Go durations (time.ParseDuration); empty or unparsable: the default",
		Ours: "Go durations as they did; a bare number is seconds (30 is 30s) and unparsable is the default, each with a warning; " + ours}
}

// Lookup returns the entry of an inherited variable.
func Lookup(name string) (Inherited, bool) {
	for _, v := range InheritedVars {
		if v.Name == name {
			return v, true
		}
	}
	return Inherited{}, false
}

func peersOf(name string) string {
	v, ok := Lookup(name)
	if !ok {
		panic("settings: " + name + " is not an inherited variable") // a programming error, caught by tests
	}
	switch len(v.Peers) {
	case 1:
		return v.Peers[0]
	case 2:
		return v.Peers[0] + " and " + v.Peers[1]
	}
	return strings.Join(v.Peers[:len(v.Peers)-1], ", ") + " and " + v.Peers[len(v.Peers)-1]
}

// PeerBool reads an inherited boolean by its peers' rule: exactly "true" is
// true, exactly "false" is false, anything else (case, spaces, "1", "yes")
// is def. It never fails; any value but "true" and "false" adds a warning.
func (e *Env) PeerBool(name string, def bool) bool {
	v, ok := e.Get(name)
	switch {
	case !ok:
		return def
	case v == "true":
		return true
	case v == "false":
		return false
	}
	e.warn(name, v, fmt.Sprint(def), peersOf(name)+` read only "true" and "false"; anything else is the default`)
	return def
}

// PeerYes reads an inherited yes-flag (k8s-prestop-sidecar's LOG): only
// "yes" is true. Anything but "yes" and "no" adds a warning.
func (e *Env) PeerYes(name string) bool {
	v, ok := e.Get(name)
	switch {
	case !ok || v == "no":
		return false
	case v == "yes":
		return true
	}
	e.warn(name, v, "false", peersOf(name)+` read only "yes" as true`)
	return false
}

// PeerDuration reads an inherited duration: Go durations as the peers did,
// and our bare seconds; unparsable is def, as the peers had it. A value <= 0
// is 0, or def when positive is set (the value would break every request).
// set is false when the value was unset or ignored.
func (e *Env) PeerDuration(name string, def time.Duration, positive bool) (d time.Duration, set bool) {
	v, ok := e.Get(name)
	if !ok {
		return def, false
	}
	if pd, err := time.ParseDuration(v); err == nil && pd <= 0 {
		if positive {
			e.warn(name, v, FormatDuration(def), "it must be above 0; the default is used")
			e.ignore(name)
			return def, false
		}
		if pd < 0 {
			e.warn(name, v, "0", peersOf(name)+" read a negative duration as no limit")
		}
		return 0, true
	}
	d, err := ParseDuration(v)
	if err == nil && d == 0 && positive {
		// "00", "0.0" or " 0s": zero all the same, though not a Go duration.
		e.warn(name, v, FormatDuration(def), "it must be above 0; the default is used")
		e.ignore(name)
		return def, false
	}
	switch {
	case err == nil && isDecimal(strings.TrimSpace(v)) && d > 0:
		e.warn(name, v, FormatDuration(d), "a bare number is seconds here; "+peersOf(name)+" ignored it and used the default")
		return d, true
	case err == nil && v == strings.TrimSpace(v):
		return d, true
	case err == nil:
		e.warn(name, v, FormatDuration(d), "spaces trimmed; "+peersOf(name)+" ignored it and used the default")
		return d, true
	case errors.Is(err, ErrTooLarge):
		e.warn(name, v, "unset", "longer than "+FormatDuration(MaxDuration)+", the most any duration may be; the default is used")
		e.ignore(name)
		return def, false
	}
	e.warn(name, v, "unset", peersOf(name)+" ignored a value that is not a Go duration and used the default")
	e.ignore(name)
	return def, false
}

// WriteMigrationTable writes the README's table of inherited variables,
// one row per rule: the variables that share it, each with its peers.
func WriteMigrationTable(w io.Writer) {
	fmt.Fprintln(w, "| Variables (peers) | Peers' default | What the peers accepted | What envoy-lifecycle does |")
	fmt.Fprintln(w, "|---|---|---|---|")
	type row struct {
		names []string
		v     Inherited
	}
	var rows []*row
	for _, v := range InheritedVars {
		var r *row
		for _, old := range rows {
			if old.v.Def == v.Def && old.v.Peer == v.Peer && old.v.Ours == v.Ours {
				r = old
			}
		}
		if r == nil {
			r = &row{v: v}
			rows = append(rows, r)
		}
		r.names = append(r.names, fmt.Sprintf("`%s` (%s)", v.Name, strings.Join(v.Peers, ", ")))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", strings.Join(r.names, "<br>"), r.v.Def, r.v.Peer, r.v.Ours)
	}
}
