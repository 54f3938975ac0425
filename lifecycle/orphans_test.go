package lifecycle

import (
	"testing"
	"time"
)

func TestOrphanGrace(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name        string
		stopTimeout time.Duration
		shutdownBy  time.Time
		want        time.Duration
	}{
		{"app exited on its own", 2 * time.Second, time.Time{}, 2 * time.Second},
		{"stop timeout 0 is not forever", 0, time.Time{}, DefaultStopTimeout},
		{"budget left is larger", 2 * time.Second, now.Add(20 * time.Second), 2 * time.Second},
		{"budget left less the quit's share", 10 * time.Second, now.Add(QuitBudget + time.Second), time.Second},
		{"budget spent", 10 * time.Second, now.Add(time.Second), 0},
	}
	for _, c := range cases {
		if got := orphanGrace(c.stopTimeout, c.shutdownBy, now); got != c.want {
			t.Errorf("%s: orphanGrace got %v, want %v", c.name, got, c.want)
		}
	}
}
