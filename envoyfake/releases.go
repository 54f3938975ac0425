package envoyfake

import (
	"fmt"
	"strconv"
	"strings"
)

// feature is an admin behaviour that appeared in some Envoy release.
type feature uint

const (
	// featMethodNotAllowed: a non-POST on a mutating endpoint gives 405
	// "Method GET not allowed, POST required."; before, 400 "Invalid
	// request; POST required" (§1).
	featMethodNotAllowed feature = 1 << iota
	// featPromUsedOnly: /stats/prometheus honours usedonly.
	featPromUsedOnly
	// featReady: GET /ready, and the server.state gauge.
	featReady
	// featDrainListeners: POST /drain_listeners (with inboundonly), and the
	// per-worker listener stats (listener.X.worker_N.*, main_thread).
	featDrainListeners
	// featDrainStrategy: --drain-strategy, so drain_strategy shows in
	// /server_info's command_line_options.
	featDrainStrategy
	// featGracefulDrain: drain_listeners?graceful; before, the parameter is
	// unknown and ignored, so the call stops the listeners at once (§2.4).
	featGracefulDrain
	// featNode: the node object in /server_info.
	featNode
	// featPercentDecoding: admin query values are percent-decoded (§1).
	featPercentDecoding
	// featSkipExit: drain_listeners?skip_exit, 400 "skip_exit requires
	// graceful\n" without graceful; before, the parameter is ignored.
	featSkipExit
	// featClustersFilter: /clusters?filter=RE2, 400 "Invalid re2 regex" for
	// a bad one; before, the parameter is ignored (§2.9.1).
	featClustersFilter
)

// releaseLine is one Envoy release line, 1.<minor>, with what it added.
type releaseLine struct {
	minor     int
	lastPatch int     // the newest patch release the reference names; 0 if it names only x.y.0
	adds      feature // behaviours first released in 1.<minor>.0
}

// releases is every release the fake can claim, transcribed from
// ../shared/reference/envoy-admin.md §4 (details in §1, §2.1, §2.2, §2.4).
// A release behaves as the union of what it and every earlier line added.
// It starts at 1.9, the first release whose /server_info is JSON (which the
// fake always serves), and ends at 1.38, the newest release §4 lists; later
// releases and main-branch behaviour (skip_exit without graceful) are not in
// it, so the fake refuses them.
var releases = []releaseLine{
	{minor: 9}, // 2018-12: /server_info JSON with state; GET on a mutation gives 400
	{minor: 10, adds: featMethodNotAllowed | featPromUsedOnly}, // 2019-04
	{minor: 11, adds: featReady},                               // 2019-07
	{minor: 12, adds: featDrainListeners},                      // 2019-10
	{minor: 13},
	{minor: 14},                          // 2020-04
	{minor: 15, adds: featDrainStrategy}, // 2020-07
	{minor: 16, adds: featGracefulDrain | featNode | featPercentDecoding}, // 2020-10
	{minor: 17}, {minor: 18}, {minor: 19}, {minor: 20}, {minor: 21}, {minor: 22},
	{minor: 23}, {minor: 24}, {minor: 25}, {minor: 26}, {minor: 27},
	{minor: 28, adds: featSkipExit}, // 2023-10
	{minor: 29}, {minor: 30}, {minor: 31}, {minor: 32}, {minor: 33}, {minor: 34},
	{minor: 35},
	{minor: 36, lastPatch: 6}, // 2025-10; 1.36.6 is the newest release the reference read
	{minor: 37},
	{minor: 38, adds: featClustersFilter}, // 2026-04-23
}

// release is the Envoy release a fake claims: its number and behaviours.
type release struct {
	minor, patch int
	has          feature
}

func (r release) String() string { return fmt.Sprintf("1.%d.%d", r.minor, r.patch) }

// supports reports whether the release has behaviour f.
func (r release) supports(f feature) bool { return r.has&f != 0 }

// versionString is the /server_info version for a bare release number.
func versionString(number string) string { return "0123abcd/" + number + "/Clean/RELEASE/BoringSSL" }

// parseRelease finds the release in an Envoy version string
// ("<sha>/1.36.6/Clean/RELEASE/BoringSSL", its second field) and refuses
// one that is not in releases, a development build ("1.9.0-dev")
// included.
func parseRelease(version string) (release, error) {
	fields := strings.Split(version, "/")
	if len(fields) < 2 {
		return release{}, fmt.Errorf("envoyfake: Version %q: want <sha>/<x.y.z>/..., as Envoy prints it, or a bare x.y.z; releases are %s", version, releaseRange())
	}
	number := fields[1]
	var minor, patch int
	parts := strings.Split(number, ".")
	ok := len(parts) == 3 && parts[0] == "1"
	if ok {
		var err1, err2 error
		minor, err1 = strconv.Atoi(parts[1])
		patch, err2 = strconv.Atoi(parts[2])
		ok = err1 == nil && err2 == nil && patch >= 0
	}
	if ok {
		var has feature
		for _, l := range releases {
			has |= l.adds
			if l.minor == minor && patch <= l.lastPatch {
				return release{minor: minor, patch: patch, has: has}, nil
			}
		}
	}
	return release{}, fmt.Errorf("envoyfake: Version %q: %q is not an Envoy release the fake knows; releases are %s", version, number, releaseRange())
}

// releaseRange describes releases for error messages.
func releaseRange() string {
	var patched []string
	for _, l := range releases {
		if l.lastPatch > 0 {
			patched = append(patched, fmt.Sprintf("1.%d.0-1.%d.%d", l.minor, l.minor, l.lastPatch))
		}
	}
	return fmt.Sprintf("1.%d.0 to 1.%d.0 (x.y.0 only, and %s)", releases[0].minor, releases[len(releases)-1].minor, strings.Join(patched, ", "))
}
