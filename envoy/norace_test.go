//go:build !race

package envoy

// raceSlack is 0 without the race detector.
const raceSlack = 0
