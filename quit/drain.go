package quit

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
)

// Drain is the drain engine shared by the wrap mode and the shutdown
// manager: optionally wait, fail Envoy's health checks, wait for endpoints to
// be deprogrammed, drain listeners, then poll open connections until they
// reach a minimum or the deadline passes.
type Drain struct {
	Admin *envoy.Client
	// StartDelay is waited before anything else (marin3r's
	// --start-drain-delay). Zero skips it.
	StartDelay time.Duration
	// SkipHealthcheckFail leaves Envoy's health checks alone.
	SkipHealthcheckFail bool
	// Delay is waited after failing health checks, so load balancers stop
	// sending new requests before listeners drain. Zero skips it. With
	// Quiet set it is the fallback for missing stats instead.
	Delay time.Duration
	// Quiet, if set, replaces the fixed Delay with an adaptive one: wait
	// until no new connection or request arrived for Quiet.Window. Run
	// fills in a nil Sample (Envoy's Arrivals), a zero Fallback (Delay),
	// a zero Max (half the Deadline, so the listener drain keeps the other
	// half; none without a Deadline) and a nil Logger. Nil means the fixed
	// Delay.
	Quiet *Quiet
	// Arrivals selects the counters Quiet watches; the zero value means
	// the defaults of envoy.Arrivals.
	Arrivals envoy.Arrivals
	// SkipIdleDelay drops Delay when the counted listeners never accepted a
	// connection or request: nothing routes to this pod (a Job), so there
	// is nothing for load balancers to deprogram. Quiet always does this.
	SkipIdleDelay bool
	// SkipDrainListeners leaves the listeners alone (marin3r never calls
	// /drain_listeners); connections are still polled.
	SkipDrainListeners bool
	// InboundOnly drains only inbound listeners, so the app can still call
	// its dependencies while it finishes.
	InboundOnly bool
	// SkipExit adds skip_exit to /drain_listeners (Envoy 1.28+): after its
	// drain period Envoy keeps the listeners, its readiness listener
	// included, instead of stopping them (projectcontour/contour#4852).
	// False leaves the flag out, as before.
	SkipExit bool
	// Period is the interval between connection polls; zero means 1s.
	Period time.Duration
	// Deadline bounds the whole drain, delays included, from the moment Run
	// is called. Zero means no deadline other than ctx.
	Deadline time.Duration
	// MinConnections ends the wait once the count is at or below it.
	MinConnections uint64
	// Selector chooses the stats that are summed; the zero value means
	// envoy.DefaultConnSelector.
	Selector envoy.Selector
	// Retries is the number of /healthcheck/fail attempts; zero means 3.
	Retries int
	Logger  hclog.Logger
}

// Reason says why a drain ended. Callers compare it with the constants below,
// never with text: its words are for logs and answers only.
type Reason string

// The reasons a drain ends.
const (
	// ReasonDrained: the count reached the minimum.
	ReasonDrained Reason = "drained"
	// ReasonDeadline: Deadline passed with connections still open.
	ReasonDeadline Reason = "deadline"
	// ReasonStatMissing: no stat matched the selector, so nothing was waited on.
	ReasonStatMissing Reason = "stat missing"
	// ReasonUnreachable: the admin stopped answering (Envoy went away).
	ReasonUnreachable Reason = "admin unreachable"
	// ReasonStatsTooLarge: the admin answered /stats with more than the
	// client reads (envoy.ErrTooLarge); retrying would read as much again.
	ReasonStatsTooLarge Reason = "stats too large"
	// ReasonCancelled: ctx was cancelled (a second signal, the app exiting,
	// a server closing).
	ReasonCancelled Reason = "cancelled"
)

// Result says how a drain ended.
type Result struct {
	Took time.Duration
	// Remaining is the last connection count seen (0 if never read).
	Remaining uint64
	Reason    Reason
	// Delayed is how long the endpoint delay (fixed or Quiet) took.
	Delayed time.Duration
	// Quiet is how the Quiet wait ended; empty when it did not run.
	Quiet QuietReason
}

// Run drains. skipDelay drops Delay (the app already exited: nothing is left
// to protect from new requests). Cancelling ctx ends the drain at once, with
// ReasonCancelled (a second termination signal does that).
func (d *Drain) Run(ctx context.Context, skipDelay bool) Result {
	start := time.Now()
	log := d.logger()
	if d.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Deadline)
		defer cancel()
	}
	var delayed time.Duration
	var quiet QuietReason
	res := func(reason Reason, remaining uint64) Result {
		r := Result{Took: time.Since(start), Remaining: remaining, Reason: reason, Delayed: delayed, Quiet: quiet}
		log.Info("drain finished", "reason", string(reason), "connections", remaining, "took", r.Took)
		return r
	}
	if d.StartDelay > 0 {
		log.Info("waiting before drain", "delay", d.StartDelay)
		if !sleep(ctx, d.StartDelay) {
			return res(endReason(ctx), 0)
		}
	}

	if !d.SkipHealthcheckFail {
		t := time.Now()
		err := d.failHealthchecks(ctx)
		switch {
		case err == nil:
			log.Info("health checks failed", "took", time.Since(t))
		case ctx.Err() != nil:
			return res(endReason(ctx), 0)
		default:
			// Draining is still worth doing without the health-check signal.
			log.Error("cannot fail health checks", "error", err, "took", time.Since(t))
		}
	}

	switch {
	case skipDelay:
	case d.Quiet != nil:
		t := time.Now()
		q := d.quiet()
		log.Info("waiting for new connections and requests to stop", "window", q.Window, "min", q.Min, "max", q.Max)
		qr := q.Wait(ctx)
		delayed, quiet = time.Since(t), qr.Reason
		if qr.Reason == QuietDeadline || qr.Reason == QuietCancelled {
			return res(endReason(ctx), 0)
		}
		log.Info("endpoint delay over", "mode", "auto", "reason", string(qr.Reason), "quiet_since", qr.QuietSince, "took", delayed)
	case d.Delay > 0 && d.SkipIdleDelay && d.idle(ctx):
		log.Info("no connection ever accepted; skipping the endpoint delay", "delay", d.Delay)
	case d.Delay > 0:
		t := time.Now()
		log.Info("waiting for endpoints to be deprogrammed", "delay", d.Delay)
		ok := sleep(ctx, d.Delay)
		delayed = time.Since(t)
		if !ok {
			return res(endReason(ctx), 0)
		}
		log.Info("endpoint delay over", "mode", "fixed", "took", delayed)
	}

	if !d.SkipDrainListeners {
		t := time.Now()
		err := d.Admin.DrainListeners(ctx, envoy.DrainOptions{Graceful: true, InboundOnly: d.InboundOnly, SkipExit: d.SkipExit})
		var se *envoy.StatusError
		switch {
		case err == nil:
			log.Info("listeners draining", "inbound_only", d.InboundOnly, "skip_exit", d.SkipExit, "took", time.Since(t))
		case errors.As(err, &se) && se.Code == http.StatusNotFound:
			log.Warn("envoy has no /drain_listeners (before 1.12); connections are still polled")
		case ctx.Err() != nil:
			return res(endReason(ctx), 0)
		default:
			log.Error("cannot drain listeners", "error", err)
		}
	}
	return d.poll(ctx, res)
}

// poll reads the connection count at once, then every Period.
func (d *Drain) poll(ctx context.Context, res func(Reason, uint64) Result) Result {
	log := d.logger()
	period := d.Period
	if period <= 0 {
		period = time.Second
	}
	sel := d.selector()
	var last uint64
	failures := 0
	for {
		n, matched, err := d.Admin.ActiveConnections(ctx, sel)
		switch {
		case ctx.Err() != nil:
			return res(endReason(ctx), last)
		case errors.Is(err, envoy.ErrTooLarge):
			log.Error("cannot count connections: the stats answer is too large", "error", err)
			return res(ReasonStatsTooLarge, last)
		case err != nil:
			failures++
			log.Warn("cannot read connections", "error", err, "failures", failures)
			// An admin that stopped answering is an Envoy that went away:
			// nothing is left to drain, so do not wait out the deadline.
			if errors.Is(err, envoy.ErrUnreachable) || failures >= 3 {
				return res(ReasonUnreachable, last)
			}
		case matched == 0:
			log.Warn("no connection stat matched; not waiting for connections", "include", sel.Include.String())
			return res(ReasonStatMissing, 0)
		default:
			failures = 0
			last = n
			log.Info("open connections", "count", n, "min", d.MinConnections)
			if n <= d.MinConnections {
				return res(ReasonDrained, n)
			}
		}
		if !sleep(ctx, period) {
			return res(endReason(ctx), last)
		}
	}
}

// idle reports whether every watched listener has a zero total of accepted
// connections and requests. Any doubt, such as no matching stat, is "not idle".
func (d *Drain) idle(ctx context.Context) bool {
	c, err := d.Admin.Arrivals(ctx, d.Arrivals)
	if err != nil {
		d.logger().Debug("cannot read connection totals", "error", err)
		return false
	}
	return len(c) > 0 && !anyArrived(c)
}

// quiet is d.Quiet with Run's defaults filled in.
func (d *Drain) quiet() *Quiet {
	q := *d.Quiet
	if q.Sample == nil {
		q.Sample = ArrivalSampler(d.Admin, d.Arrivals)
	}
	if q.Fallback == 0 {
		q.Fallback = d.Delay
	}
	if q.Max == 0 && d.Deadline > 0 {
		q.Max = d.Deadline / 2
	}
	if q.Logger == nil {
		q.Logger = d.logger()
	}
	return &q
}

func (d *Drain) selector() envoy.Selector {
	if d.Selector.Include == nil {
		return envoy.DefaultConnSelector()
	}
	return d.Selector
}

func (d *Drain) failHealthchecks(ctx context.Context) error {
	attempts := d.Retries
	if attempts <= 0 {
		attempts = 3
	}
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 && !sleep(ctx, time.Duration(100*i)*time.Millisecond) {
			return errors.Join(err, ctx.Err())
		}
		if err = d.Admin.FailHealthchecks(ctx); err == nil {
			return nil
		}
	}
	return err
}

func (d *Drain) logger() hclog.Logger {
	if d.Logger == nil {
		return hclog.NewNullLogger()
	}
	return d.Logger
}

// endReason names why ctx ended: its deadline, or a cancel.
func endReason(ctx context.Context) Reason {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ReasonDeadline
	}
	return ReasonCancelled
}

// sleep waits d or until ctx ends, and reports whether it waited the full d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
