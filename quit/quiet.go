package quit

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
)

// Counters is one reading of monotonic counters of new arrivals (new
// connections, new requests, load-balancer hits), by name.
type Counters map[string]uint64

// Sampler reads Counters. An empty result with a nil error means no counter
// exists to read (the stats are missing), not "no traffic".
type Sampler func(ctx context.Context) (Counters, error)

// ArrivalSampler samples Envoy's inbound connection and request totals,
// selected by a (envoy-admin.md §2.10).
func ArrivalSampler(admin *envoy.Client, a envoy.Arrivals) Sampler {
	return func(ctx context.Context) (Counters, error) {
		return admin.Arrivals(ctx, a)
	}
}

// Clock is the time source of a Quiet wait, injected by tests.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// QuietReason says why a Quiet wait ended. Compare it with the constants,
// never with text.
type QuietReason string

// The reasons a Quiet wait ends.
const (
	QuietReached     QuietReason = "quiet"             // nothing new arrived for Window (and Min passed)
	QuietIdle        QuietReason = "idle"              // nothing had ever arrived: no wait at all
	QuietMax         QuietReason = "max"               // arrivals went on until Max (e.g. keep-alive clients)
	QuietMissing     QuietReason = "stats missing"     // no counter matched; Fallback was waited instead
	QuietUnreadable  QuietReason = "stats unreadable"  // the counters could not be read; Fallback was waited instead
	QuietUnreachable QuietReason = "admin unreachable" // the proxy is gone: nothing to protect
	QuietDeadline    QuietReason = "deadline"          // ctx's deadline passed
	QuietCancelled   QuietReason = "cancelled"         // ctx was cancelled
)

// DefaultQuietWindow is the quiet window when Quiet.Window is zero.
const DefaultQuietWindow = time.Second

// quietFailures is how many reads in a row may fail before the counters
// count as unreadable.
const quietFailures = 3

// Quiet waits until no new arrival was seen for a quiet window: the
// adaptive replacement of a fixed "wait for endpoints to be deprogrammed"
// sleep. It is the one engine behind the wrap mode's drain delay and the
// shutdown manager's /shutdown and /waitz.
//
// A counter that rose, or a new name with a value above 0, is an arrival.
// A counter that fell or vanished (reset, listener removed) may hide
// arrivals, so it restarts the window too. Requests on kept-alive
// connections are arrivals as well: the load balancer is still sending
// them. Clients that never stop are bounded by Max.
type Quiet struct {
	// Sample reads the counters; required (Drain fills it in).
	Sample Sampler
	// Window is how long nothing new must arrive. Zero means
	// DefaultQuietWindow.
	Window time.Duration
	// Min is the shortest wait once anything ever arrived: quiet seen
	// earlier still waits until Min. Zero means none.
	Min time.Duration
	// Max bounds the wait whatever the traffic does. Zero means only ctx
	// bounds it.
	Max time.Duration
	// Period is the interval between samples. Zero means Window/5, within
	// [10ms, 1s].
	Period time.Duration
	// Fallback is waited, from the start and at least Min (at most Max),
	// when the counters are missing or unreadable, since quiet cannot be
	// observed then. Zero returns at once.
	Fallback time.Duration
	// LastArrival, if set, tells when the source last saw an arrival (a
	// source that stamps its own, like the shutdown manager's health
	// port). Windows then count from it rather than from the reading that
	// saw the counter move, and a source that never had an arrival is not
	// idle: it waits a window from LastArrival's zero-hit value.
	LastArrival func() time.Time
	// Clock is the time source; nil means the real clock.
	Clock Clock
	// Logger may be nil (no logs).
	Logger hclog.Logger
}

// QuietResult says how a Quiet wait ended.
type QuietResult struct {
	Reason QuietReason
	Took   time.Duration
	// QuietSince is when, after the start, the last arrival (or reset) was
	// observed: the quiet point. Zero if none was seen; negative when
	// LastArrival placed it before the start.
	QuietSince time.Duration
	// Arrivals is how many new connections, requests or hits were seen
	// during the wait.
	Arrivals uint64
	// Samples is how many readings were taken.
	Samples int
}

// Wait samples at once, then every Period, until one of the reasons above.
func (q *Quiet) Wait(ctx context.Context) QuietResult {
	clk := q.Clock
	if clk == nil {
		clk = realClock{}
	}
	log := q.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	window := q.Window
	if window <= 0 {
		window = DefaultQuietWindow
	}
	period := q.Period
	if period <= 0 {
		period = min(max(window/5, 10*time.Millisecond), time.Second)
	}

	start := clk.Now()
	var (
		res        QuietResult
		prev       Counters
		lastChange time.Time
		changed    bool // an arrival or reset was seen after the first reading
		failures   int
	)
	end := func(reason QuietReason) QuietResult {
		res.Reason, res.Took = reason, clk.Now().Sub(start)
		if changed {
			res.QuietSince = lastChange.Sub(start)
		}
		log.Debug("traffic wait over", "reason", string(reason), "quiet_since", res.QuietSince, "took", res.Took,
			"window", window, "arrivals", res.Arrivals, "samples", res.Samples)
		return res
	}
	// fallback waits what a fixed delay would have, as quiet cannot be seen.
	fallback := func(reason QuietReason) QuietResult {
		d := max(q.Fallback, q.Min)
		if q.Max > 0 {
			d = min(d, q.Max)
		}
		left := d - clk.Now().Sub(start)
		log.Warn("cannot observe traffic; waiting the fixed delay instead", "reason", string(reason), "delay", d)
		if left > 0 {
			select {
			case <-ctx.Done():
				return end(quietEnd(ctx))
			case <-clk.After(left):
			}
		}
		return end(reason)
	}

	for {
		cur, err := q.Sample(ctx)
		res.Samples++
		now := clk.Now()
		switch {
		case ctx.Err() != nil:
			return end(quietEnd(ctx))
		case err != nil && errors.Is(err, envoy.ErrUnreachable):
			log.Warn("cannot read arrival counters; proxy gone", "error", err)
			return end(QuietUnreachable)
		case err != nil:
			failures++
			log.Warn("cannot read arrival counters", "error", err, "failures", failures)
			if failures >= quietFailures {
				return fallback(QuietUnreadable)
			}
		case len(cur) == 0:
			log.Warn("no arrival counter matched")
			return fallback(QuietMissing)
		case prev == nil:
			failures = 0
			prev, lastChange = cur, now
			if q.LastArrival != nil {
				lastChange, changed = earlier(q.LastArrival(), now), true
			} else if !anyArrived(cur) {
				log.Info("no connection or request ever arrived; not waiting")
				return end(QuietIdle)
			}
		default:
			failures = 0
			n, reset := arrivals(prev, cur)
			res.Arrivals += n
			if n > 0 || reset {
				lastChange, changed = now, true
				if q.LastArrival != nil && n > 0 {
					lastChange = earlier(q.LastArrival(), now)
				}
				log.Trace("arrivals seen", "new", n, "reset", reset)
			}
			prev = cur
		}

		took := now.Sub(start)
		if prev != nil && now.Sub(lastChange) >= window && took >= q.Min {
			return end(QuietReached)
		}
		if q.Max > 0 && took >= q.Max {
			log.Warn("traffic did not go quiet; wait bounded", "max", q.Max)
			return end(QuietMax)
		}
		wait := period
		if q.Max > 0 {
			wait = min(wait, q.Max-took)
		}
		select {
		case <-ctx.Done():
			return end(quietEnd(ctx))
		case <-clk.After(wait):
		}
	}
}

// arrivals compares two readings: n is how much the counters rose (a new
// name counts with its value), reset whether any fell or vanished.
func arrivals(prev, cur Counters) (n uint64, reset bool) {
	for name, v := range cur {
		old, ok := prev[name]
		switch {
		case v > old:
			// A new name has old == 0. Saturated: a sum wrapped past
			// MaxUint64 could read as no arrival at all.
			n = min(n, math.MaxUint64-(v-old)) + (v - old)
		case ok && v < old:
			reset = true
		}
	}
	for name := range prev {
		if _, ok := cur[name]; !ok {
			reset = true
		}
	}
	return n, reset
}

func anyArrived(c Counters) bool {
	for _, v := range c {
		if v > 0 {
			return true
		}
	}
	return false
}

// quietEnd names why ctx ended.
func quietEnd(ctx context.Context) QuietReason {
	if endReason(ctx) == ReasonDeadline {
		return QuietDeadline
	}
	return QuietCancelled
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
