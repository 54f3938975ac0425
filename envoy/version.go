package envoy

import (
	"strconv"
	"strings"
)

// Version is an Envoy release, from /server_info's "version"
// ("<sha>/1.36.6/Clean/RELEASE/BoringSSL").
type Version struct{ Major, Minor, Patch int }

// ParseVersion finds the release in an Envoy version string. ok is false when
// there is none, as in a custom build string.
func ParseVersion(s string) (v Version, ok bool) {
	for _, part := range strings.Split(s, "/") {
		// Releases can carry a suffix such as "1.9.0-dev".
		core, _, _ := strings.Cut(part, "-")
		nums := strings.Split(core, ".")
		if len(nums) != 3 {
			continue
		}
		var n [3]int
		valid := true
		for i, x := range nums {
			v, err := strconv.Atoi(x)
			if err != nil || v < 0 {
				valid = false
				break
			}
			n[i] = v
		}
		if valid {
			return Version{n[0], n[1], n[2]}, true
		}
	}
	return Version{}, false
}

// AtLeast reports whether v is minor release 1.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func (v Version) String() string {
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) + "." + strconv.Itoa(v.Patch)
}

// Features are the admin behaviours envoy-lifecycle relies on, by release
// (reference: envoy-admin.md §4).
type Features struct {
	// DrainListeners: POST /drain_listeners (1.12); graceful is documented
	// from 1.16.
	DrainListeners, GracefulDrain bool
	// SkipExit: drain_listeners?skip_exit (1.28).
	SkipExit bool
	// MethodNotAllowed: GET on a mutating endpoint answers 405 (1.10);
	// before, 400.
	MethodNotAllowed bool
	// Ready: GET /ready (1.11).
	Ready bool
}

// FeaturesOf lists what release v supports.
func FeaturesOf(v Version) Features {
	return Features{
		DrainListeners:   v.AtLeast(1, 12),
		GracefulDrain:    v.AtLeast(1, 16),
		SkipExit:         v.AtLeast(1, 28),
		MethodNotAllowed: v.AtLeast(1, 10),
		Ready:            v.AtLeast(1, 11),
	}
}
