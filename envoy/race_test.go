//go:build race

package envoy

// raceSlack is heap the race detector adds to a measurement: sync.Pool drops
// entries under -race, so regexp allocates a machine per match, and the
// garbage piles up between GC cycles.
const raceSlack = 9 << 20
