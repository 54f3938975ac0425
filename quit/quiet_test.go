package quit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
)

// fakeClock jumps forward by each waited duration at once, so a scripted
// wait of seconds runs in microseconds and its timings are exact.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// step is one scripted reading: counters, or an error.
type step struct {
	c   Counters
	err error
}

// script returns the steps in order, then repeats the last one forever.
func script(steps ...step) (Sampler, *int) {
	n := new(int)
	return func(context.Context) (Counters, error) {
		s := steps[min(*n, len(steps)-1)]
		*n++
		return s.c, s.err
	}, n
}

// rising is a reading where cx connections and rq requests have arrived.
func reading(cx, rq uint64) step {
	return step{c: Counters{
		"listener.0.0.0.0_8080.downstream_cx_total": cx,
		"http.ingress_http.downstream_rq_total":     rq,
	}}
}

// rampThenFlat rises by one connection and one request per sample for n
// samples, then stays flat.
func rampThenFlat(n int) []step {
	var s []step
	for i := 1; i <= n+1; i++ {
		s = append(s, reading(uint64(i), uint64(i)))
	}
	return s
}

var errFlaky = errors.New("status 503")

func TestQuietWait(t *testing.T) {
	t.Parallel()
	const (
		period = 100 * time.Millisecond
		window = time.Second
		maxW   = 10 * time.Second
	)
	keepAlive := func() []step { // one connection, a request every sample
		var s []step
		for i := uint64(1); i <= 200; i++ {
			s = append(s, reading(1, i))
		}
		return s
	}
	keepAliveStops := func() []step {
		var s []step
		for i := uint64(1); i <= 15; i++ {
			s = append(s, reading(1, i))
		}
		return s
	}
	steady := func() []step { // a new connection and request every sample, forever
		var s []step
		for i := uint64(1); i <= 200; i++ {
			s = append(s, reading(i, i))
		}
		return s
	}
	tests := []struct {
		name        string
		steps       []step
		min, fall   time.Duration
		wantReason  QuietReason
		wantTook    time.Duration
		wantSince   time.Duration
		wantArrived uint64
		wantSamples int
	}{
		// Samples at 0, 100ms, …; the last rise is seen at sample 5 (500ms),
		// so the window is over at 1.5s.
		{name: "traffic stops", steps: rampThenFlat(5), wantReason: QuietReached,
			wantTook: 1500 * time.Millisecond, wantSince: 500 * time.Millisecond, wantArrived: 10, wantSamples: 16},
		{name: "steady traffic is bounded by max", steps: steady(), wantReason: QuietMax,
			wantTook: maxW, wantSince: maxW, wantArrived: 200, wantSamples: 101},
		{name: "keep-alive requests count and are bounded by max", steps: keepAlive(), wantReason: QuietMax,
			wantTook: maxW, wantSince: maxW, wantArrived: 100, wantSamples: 101},
		{name: "keep-alive requests that stop", steps: keepAliveStops(), wantReason: QuietReached,
			wantTook: 2400 * time.Millisecond, wantSince: 1400 * time.Millisecond, wantArrived: 14, wantSamples: 25},
		{name: "no traffic ever: no wait even with a minimum", steps: []step{reading(0, 0)}, min: 3 * time.Second,
			wantReason: QuietIdle, wantSamples: 1},
		{name: "traffic before the wait, none since", steps: []step{reading(7, 30)}, wantReason: QuietReached,
			wantTook: window, wantSamples: 11},
		{name: "minimum holds an early quiet", steps: []step{reading(7, 30)}, min: 4 * time.Second,
			wantReason: QuietReached, wantTook: 4 * time.Second, wantSamples: 41},
		{name: "stats missing waits the fallback", steps: []step{{c: Counters{}}}, fall: 5 * time.Second,
			wantReason: QuietMissing, wantTook: 5 * time.Second, wantSamples: 1},
		{name: "stats missing without fallback does not wait", steps: []step{{c: nil}},
			wantReason: QuietMissing, wantSamples: 1},
		{name: "stats missing waits the minimum when longer", steps: []step{{c: Counters{}}}, fall: time.Second, min: 2 * time.Second,
			wantReason: QuietMissing, wantTook: 2 * time.Second, wantSamples: 1},
		{name: "stats that vanish midway fall back", steps: []step{reading(3, 3), reading(4, 4), {c: Counters{}}}, fall: 5 * time.Second,
			wantReason: QuietMissing, wantTook: 5 * time.Second, wantArrived: 2, wantSince: 100 * time.Millisecond, wantSamples: 3},
		{name: "three failed reads fall back", steps: []step{{err: errFlaky}}, fall: 5 * time.Second,
			wantReason: QuietUnreadable, wantTook: 5 * time.Second, wantSamples: 3},
		{name: "failed reads in between are bridged", steps: []step{reading(1, 1), {err: errFlaky}, {err: errFlaky}, reading(2, 2), reading(2, 2)},
			wantReason: QuietReached, wantTook: 1300 * time.Millisecond, wantSince: 300 * time.Millisecond, wantArrived: 2, wantSamples: 14},
		{name: "proxy gone ends at once", steps: []step{reading(1, 1), {err: fmt.Errorf("get: %w", envoy.ErrUnreachable)}},
			wantReason: QuietUnreachable, wantTook: period, wantSamples: 2},
		{name: "a counter reset restarts the window", steps: []step{reading(9, 9), reading(9, 9), reading(9, 9), reading(0, 0)},
			wantReason: QuietReached, wantTook: 1300 * time.Millisecond, wantSince: 300 * time.Millisecond, wantSamples: 14},
		{name: "a listener removed restarts the window",
			steps:      []step{reading(9, 9), {c: Counters{"http.ingress_http.downstream_rq_total": 9}}},
			wantReason: QuietReached, wantTook: 1100 * time.Millisecond, wantSince: 100 * time.Millisecond, wantSamples: 12},
		{name: "a new listener with traffic is an arrival",
			steps: []step{reading(1, 1), {c: Counters{
				"listener.0.0.0.0_8080.downstream_cx_total": 1, "http.ingress_http.downstream_rq_total": 1,
				"listener.0.0.0.0_9090.downstream_cx_total": 4,
			}}},
			wantReason: QuietReached, wantTook: 1100 * time.Millisecond, wantSince: 100 * time.Millisecond, wantArrived: 4, wantSamples: 12},
		{name: "a new idle listener is not an arrival",
			steps: []step{reading(1, 1), {c: Counters{
				"listener.0.0.0.0_8080.downstream_cx_total": 1, "http.ingress_http.downstream_rq_total": 1,
				"listener.0.0.0.0_9090.downstream_cx_total": 0,
			}}},
			wantReason: QuietReached, wantTook: window, wantSamples: 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sample, calls := script(tc.steps...)
			q := Quiet{Sample: sample, Window: window, Period: period, Min: tc.min, Max: maxW, Fallback: tc.fall, Clock: newFakeClock()}
			got := q.Wait(context.Background())
			if got.Reason != tc.wantReason {
				t.Errorf("Reason got %q, want %q", got.Reason, tc.wantReason)
			}
			if got.Took != tc.wantTook {
				t.Errorf("Took got %v, want %v", got.Took, tc.wantTook)
			}
			if got.QuietSince != tc.wantSince {
				t.Errorf("QuietSince got %v, want %v", got.QuietSince, tc.wantSince)
			}
			if got.Arrivals != tc.wantArrived {
				t.Errorf("Arrivals got %d, want %d", got.Arrivals, tc.wantArrived)
			}
			if got.Samples != tc.wantSamples || *calls != tc.wantSamples {
				t.Errorf("Samples got %d (sampler called %d times), want %d", got.Samples, *calls, tc.wantSamples)
			}
		})
	}
}

// TestQuietWaitNoMax: without Max, ctx is the only bound on endless traffic.
func TestQuietWaitNoMax(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var i uint64
	sample := func(context.Context) (Counters, error) {
		i++
		if i == 500 {
			cancel()
		}
		return Counters{"http.p.downstream_rq_total": i}, nil
	}
	got := (&Quiet{Sample: sample, Clock: newFakeClock()}).Wait(ctx)
	if got.Reason != "cancelled" {
		t.Fatalf("Reason got %q, want cancelled", got.Reason)
	}
	// Default period: Window/5 = 200ms; sample 500 comes at 499 periods.
	if want := 499 * 200 * time.Millisecond; got.Took != want {
		t.Errorf("Took got %v, want %v", got.Took, want)
	}
}

func TestQuietWaitDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	sample, _ := script(reading(1, 1))
	if got := (&Quiet{Sample: sample, Clock: newFakeClock()}).Wait(ctx); got.Reason != "deadline" {
		t.Errorf("Reason got %q, want deadline", got.Reason)
	}
}

func TestArrivalsDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prev, cur Counters
		wantN     uint64
		wantReset bool
	}{
		{"same", Counters{"a": 3}, Counters{"a": 3}, 0, false},
		{"rose", Counters{"a": 3, "b": 1}, Counters{"a": 5, "b": 2}, 3, false},
		{"new name", Counters{"a": 3}, Counters{"a": 3, "b": 2}, 2, false},
		{"new zero name", Counters{"a": 3}, Counters{"a": 3, "b": 0}, 0, false},
		{"fell", Counters{"a": 3}, Counters{"a": 1}, 0, true},
		{"vanished", Counters{"a": 3, "b": 0}, Counters{"a": 3}, 0, true},
		{"rose and fell", Counters{"a": 3, "b": 4}, Counters{"a": 5, "b": 0}, 2, true},
	}
	for _, tc := range tests {
		n, reset := arrivals(tc.prev, tc.cur)
		if n != tc.wantN || reset != tc.wantReset {
			t.Errorf("%s: arrivals got (%d, %v), want (%d, %v)", tc.name, n, reset, tc.wantN, tc.wantReset)
		}
	}
}

// TestQuietWaitLastArrival: a source that stamps its arrivals has its
// window counted from the last one, even from before the wait, and no
// arrival at all is not "idle".
func TestQuietWaitLastArrival(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ago        time.Duration // last arrival, before the wait
		steps      []step
		wantTook   time.Duration
		wantReason QuietReason
	}{
		{"quiet for long already", 5 * time.Second, []step{reading(3, 0)}, 0, QuietReached},
		{"part of the window already passed", 300 * time.Millisecond, []step{reading(3, 0)}, 700 * time.Millisecond, QuietReached},
		{"no arrival yet still waits", 0, []step{reading(0, 0)}, time.Second, QuietReached},
	}
	for _, tc := range tests {
		clk := newFakeClock()
		last := clk.Now().Add(-tc.ago)
		sample, _ := script(tc.steps...)
		q := Quiet{Sample: sample, Window: time.Second, Period: 100 * time.Millisecond, Clock: clk,
			LastArrival: func() time.Time { return last }}
		if got := q.Wait(context.Background()); got.Reason != tc.wantReason || got.Took != tc.wantTook || got.QuietSince != -tc.ago {
			t.Errorf("%s: got %s after %v (quiet since %v), want %s after %v (quiet since %v)",
				tc.name, got.Reason, got.Took, got.QuietSince, tc.wantReason, tc.wantTook, -tc.ago)
		}
	}
	// An arrival during the wait moves the window to its own stamp.
	clk := newFakeClock()
	start := clk.Now()
	last := start // the source opened as the wait began
	n := uint64(0)
	q := Quiet{Window: time.Second, Period: 100 * time.Millisecond, Clock: clk,
		LastArrival: func() time.Time { return last },
		Sample: func(context.Context) (Counters, error) {
			if clk.Now().Sub(start) == 500*time.Millisecond {
				n++
				last = start.Add(450 * time.Millisecond) // stamped between two readings
			}
			return Counters{"lb_hits": n}, nil
		}}
	if got := q.Wait(context.Background()); got.Took != 1500*time.Millisecond || got.QuietSince != 450*time.Millisecond {
		t.Errorf("arrival during the wait: got %+v, want done at 1.5s, quiet since 450ms", got)
	}
}
