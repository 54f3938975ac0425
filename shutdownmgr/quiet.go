package shutdownmgr

import (
	"context"
	"time"

	"envoy-lifecycle/quit"
)

// validFor is what a query parameter accepts, for its 400 answer.
func validFor(param string) string {
	if param == "delay" {
		return validDuration + "; or auto"
	}
	return validDuration
}

// autoDelay is the drain's adaptive delay for a request: tmpl (the server's,
// from --delay=auto) or the engine's defaults when auto was asked for, nil
// when a fixed ?delay= was.
func autoDelay(auto bool, tmpl *quit.Quiet) *quit.Quiet {
	switch {
	case !auto:
		return nil
	case tmpl != nil:
		return tmpl
	}
	return &quit.Quiet{}
}

// waitQuiet blocks until no load-balancer hit was seen for Interval: the
// quit.Quiet engine that also times the drain's adaptive delay, over the
// hit counter. Hits that never stop are bounded by limit (WaitzTimeout).
// The window counts from the last hit, or from Open when there was none.
func (s *Server) waitQuiet(ctx context.Context, limit <-chan time.Time, closing <-chan struct{}) error {
	if s.Interval <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-limit:
			cancel(errLimit)
		case <-closing:
			cancel(errClosing)
		case <-ctx.Done():
		}
	}()
	q := quit.Quiet{
		Sample: func(context.Context) (quit.Counters, error) {
			return quit.Counters{"lb_hits": s.hits.Load()}, nil
		},
		// The hits are stamped as they come (and the open counts as one):
		// the window is measured from the last hit, as before.
		LastArrival: func() time.Time { return time.Unix(0, s.lastHit.Load()) },
		Window:      s.Interval,
		Logger:      s.log,
	}
	res := q.Wait(ctx)
	if res.Reason == quit.QuietDeadline || res.Reason == quit.QuietCancelled {
		return context.Cause(ctx)
	}
	s.log.Debug("load balancer quiet", "reason", string(res.Reason), "quiet_since", res.QuietSince, "took", res.Took, "lb_hits", res.Arrivals)
	return nil
}
