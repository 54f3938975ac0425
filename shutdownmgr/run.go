package shutdownmgr

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"time"

	"envoy-lifecycle/quit"
)

// Run serves an open server until a signal arrives on sigs, then fails
// readiness, waits until nothing is left to do (WaitIdle: a running drain,
// load-balancer hits), finishes answers in flight and closes. A second
// signal skips the waiting. It returns the error that stopped the server if
// Serve failed first.
func (s *Server) Run(sigs <-chan os.Signal) error {
	var sig os.Signal
	select {
	case sig = <-sigs:
	case err := <-s.ServeErr():
		s.log.Error("server failed", "error", err)
		_ = s.Close()
		return err
	}
	s.log.Info("signal; terminating", "signal", sig.String(), "drain_on_signal", s.DrainOnTerminate)
	start := time.Now()
	s.Terminate("signal " + sig.String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := make(chan error, 1)
	go func() { idle <- s.WaitIdle(ctx) }()
	select {
	case <-idle:
	case sig = <-sigs:
		s.log.Info("second signal; exiting without waiting", "signal", sig.String())
		cancel()
		<-idle
	}
	if err := s.Close(); err != nil {
		s.log.Warn("answers in flight cut short", "error", err)
	}
	s.log.Info("exiting", "took", time.Since(start))
	return nil
}

// RunUntil drains once, as Run does, until a signal arrives on sigs: the
// signal cancels the drain (the ready file is then not written) and is
// returned, nil if none came. The error is Run's (ErrReadyFile).
func (o *Once) RunUntil(sigs <-chan os.Signal) (quit.Result, os.Signal, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type out struct {
		res quit.Result
		err error
	}
	done := make(chan out, 1)
	go func() { res, err := o.Run(ctx); done <- out{res, err} }()
	select {
	case r := <-done:
		return r.res, nil, r.err
	case sig := <-sigs:
		if o.Logger != nil {
			o.Logger.Info("signal; cancelling the drain", "signal", sig.String())
		}
		cancel()
		r := <-done
		return r.res, sig, r.err
	}
}

// LogOutput returns w, teed to path (pid 1's stdout, so an exec hook's lines
// show in kubectl logs) when mode asks for it: "true", or "auto" when this
// is not pid 1 and path opens for writing. Failing to open it is returned
// for a warning ("true" only), never fatal; failing to write it later is
// ignored.
func LogOutput(mode string, w io.Writer, path string, pid int) (io.Writer, error) {
	if mode == "false" || (mode == "auto" && pid == 1) {
		return w, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		if mode == "auto" {
			return w, nil
		}
		return w, err
	}
	return &teeWriter{main: w, extra: f}, nil
}

// teeWriter writes to main, and to extra until extra fails once: pid 1's
// stdout is a courtesy copy, it must never break logging.
type teeWriter struct {
	main   io.Writer
	extra  io.Writer
	failed atomic.Bool
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if !t.failed.Load() {
		if _, err := t.extra.Write(p); err != nil {
			t.failed.Store(true)
		}
	}
	return t.main.Write(p)
}
