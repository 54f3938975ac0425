package lifecycle

import (
	"context"
	"fmt"

	"envoy-lifecycle/readiness"
)

// waitReady checks Options.Readiness once Envoy is LIVE. ok is false when the
// app must not be started (a fatal condition missed, or a signal); out is
// then the outcome. After WAIT_FOR_ENVOY_TIMEOUT started the app without a
// LIVE Envoy there is nothing to check.
func (r *Runner) waitReady() (out Outcome, ok bool) {
	if len(r.o.Readiness) == 0 || !r.live {
		return Outcome{}, true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := readiness.Waiter{Conditions: r.o.Readiness, Logger: r.log.Named("readiness")}
	done := make(chan error, 1)
	go func() {
		_, err := w.Wait(ctx)
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err == nil {
				return Outcome{}, true
			}
			r.log.Error("readiness condition not met; app not started", "error", err)
			return r.end(r.o.Codes.Unavailable, CauseNotReady, fmt.Sprintf("%v; app not started", err)), false
		case sig := <-r.o.Signals:
			if !endsWait(sig) {
				r.log.Debug("signal ignored while checking readiness", "signal", sig.String())
				continue
			}
			cancel()
			<-done
			r.log.Info("signal while checking readiness; app not started", "signal", sig.String())
			return r.end(128+signalNumber(sig), CauseSignalWhileWaiting, fmt.Sprintf("signal %s while checking readiness; app not started", sig)), false
		}
	}
}
