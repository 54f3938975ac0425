// Package quit decides how the proxy is drained and stopped: fail Envoy's
// health checks, drain its listeners, wait for connections to go, then quit
// it through generic endpoints, Istio's pilot-agent or Envoy itself.
package quit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
)

// Policy says how the proxy is stopped when the app is done. The zero value
// stops nothing.
type Policy struct {
	// Generic are URLs POSTed first (other sidecars). Their status is logged,
	// never used.
	Generic []string
	// GenericOnly stops after the generic endpoints.
	GenericOnly bool
	// Istio is pilot-agent's status API (POST /quitquitquit); nil if unset.
	Istio *envoy.Client
	// Pkill sends SIGINT to processes named pilot-agent when Istio is nil or
	// its quit failed.
	Pkill bool
	// Envoy is Envoy's admin API; nil when there is no admin address.
	Envoy *envoy.Client
	// KillURL, if set, is POSTed instead of Envoy's /quitquitquit.
	KillURL string
	// Never disables stopping altogether.
	Never bool
	// NeverOnFailure keeps the proxy when the app exited non-zero.
	NeverOnFailure bool
	// Timeout bounds each request; zero means 5s.
	Timeout time.Duration
	// Retries is the number of attempts per request on a network error or
	// 5xx; zero means 1.
	Retries int
	// Verify bounds the check that the proxy went away; zero skips it.
	Verify time.Duration
	// ProcRoot is where Pkill looks for processes; empty means /proc.
	ProcRoot string
	Logger   hclog.Logger
}

// Report says what Stop did, for the exit log line.
type Report struct {
	// Method names the mechanism that stopped the proxy: "istio", "pkill",
	// "envoy", "generic", or "" when nothing was asked to stop.
	Method string
	// Err is the last failure, if the proxy could not be told to stop.
	Err error
	// Gone reports whether the proxy was seen to go away (false when not
	// checked).
	Gone bool
	// Skipped says why the proxy was deliberately left running, if it was.
	Skipped string
}

// WillStop reports whether Stop would try to stop the proxy itself (not just
// call generic endpoints) after the app exited with code.
func (p *Policy) WillStop(code int) bool {
	if p.Never || (p.NeverOnFailure && code != 0) || p.GenericOnly {
		return false
	}
	return p.Istio != nil || p.Pkill || p.Envoy != nil || p.KillURL != ""
}

// Stop stops the proxy after the app exited with code. It never changes the
// app's exit code, never hangs past its timeouts, and logs every failure.
func (p *Policy) Stop(ctx context.Context, code int) Report {
	log := p.logger()
	switch {
	case p.Never:
		log.Info("not stopping the proxy", "reason", "never kill is set")
		return Report{Skipped: "never kill is set"}
	case p.NeverOnFailure && code != 0:
		log.Info("not stopping the proxy", "reason", "NEVER_KILL_ISTIO_ON_FAILURE and app failed", "code", code)
		return Report{Skipped: "NEVER_KILL_ISTIO_ON_FAILURE"}
	}
	start := time.Now()
	var rep Report
	for _, u := range p.Generic {
		// Retried like the others on a network error or 5xx; the final
		// status is logged, never used (envoy-preflight's contract).
		var status int
		err := p.retry(ctx, func(ctx context.Context) error {
			var err error
			status, err = p.post(ctx, u)
			if err == nil && status >= 500 {
				err = &envoy.StatusError{Method: http.MethodPost, Path: u, Code: status}
			}
			return err
		})
		var se *envoy.StatusError
		switch {
		case errors.As(err, &se):
			log.Warn("generic quit endpoint answered an error", "url", u, "status", status)
		case err != nil:
			log.Warn("generic quit endpoint failed", "url", u, "error", err)
			continue
		default:
			log.Info("generic quit endpoint called", "url", u, "status", status)
		}
		rep.Method = "generic"
	}
	if p.GenericOnly {
		return rep
	}

	stopped := false
	if p.Istio != nil {
		if !envoy.IsLocal(p.Istio.Base()) {
			log.Warn("not stopping istio: quit api is not local", "url", p.Istio.Base().String())
		} else if err := quitting(p.retry(ctx, p.Istio.Quit)); err != nil {
			rep.Err = fmt.Errorf("cannot stop istio: %w", err)
			log.Error("cannot stop istio proxy", "url", p.Istio.Base().String(), "error", err)
		} else {
			stopped, rep.Method = true, "istio"
			log.Info("istio proxy told to quit", "took", time.Since(start))
		}
	}
	if !stopped && p.Pkill {
		n, err := signalByName(p.procRoot(), "pilot-agent", syscall.SIGINT)
		switch {
		case err != nil:
			log.Error("cannot signal pilot-agent", "error", err)
		case n == 0:
			log.Warn("no pilot-agent process found to signal")
		default:
			stopped, rep.Method = true, "pkill"
			log.Info("pilot-agent sent SIGINT", "processes", n)
		}
	}
	if !stopped && (p.Envoy != nil || p.KillURL != "") {
		if err := p.quitEnvoy(ctx); err != nil {
			rep.Err = fmt.Errorf("cannot stop envoy: %w", err)
			log.Error("cannot stop envoy", "error", err)
		} else {
			stopped, rep.Method, rep.Err = true, "envoy", nil
			log.Info("envoy told to quit", "took", time.Since(start))
		}
	}
	if stopped {
		rep.Gone = p.verify(ctx)
	}
	return rep
}

func (p *Policy) quitEnvoy(ctx context.Context) error {
	if p.KillURL != "" {
		u := p.KillURL
		if pu, err := url.Parse(u); err != nil || !envoy.IsLocal(pu) {
			return fmt.Errorf("kill url %s is not local", u)
		}
		return p.retry(ctx, func(ctx context.Context) error {
			status, err := p.post(ctx, u)
			if err == nil && (status < 200 || status > 299) {
				err = &envoy.StatusError{Method: http.MethodPost, Path: u, Code: status}
			}
			return err
		})
	}
	if !envoy.IsLocal(p.Envoy.Base()) {
		return fmt.Errorf("admin address %s is not local", p.Envoy.Base())
	}
	return quitting(p.retry(ctx, p.Envoy.Quit))
}

// quitting reads a quit request's outcome. A connection closed or reset
// after the request was sent is the proxy already going away (envoy-admin.md
// §2.7: tolerate EOF right after sending, then wait for the exit): success,
// which verify then confirms.
func quitting(err error) error {
	if errors.Is(err, envoy.ErrConnectionClosed) {
		return nil
	}
	return err
}

// verify waits, within p.Verify, for the proxy's address to refuse
// connections, and logs the outcome.
func (p *Policy) verify(ctx context.Context) bool {
	target := p.Envoy
	if target == nil {
		target = p.Istio
	}
	if p.Verify <= 0 || target == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, p.Verify)
	defer cancel()
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if target.Gone(ctx) {
			p.logger().Info("proxy stopped", "address", target.Base().String(), "took", time.Since(start))
			return true
		}
		select {
		case <-ctx.Done():
			p.logger().Warn("proxy still answering after quit", "address", target.Base().String(), "waited", p.Verify)
			return false
		case <-t.C:
		}
	}
}

// retry runs call up to p.Retries times, backing off briefly, while it fails
// with something a retry can fix: a network error or a 5xx.
func (p *Policy) retry(ctx context.Context, call func(context.Context) error) error {
	attempts := max(p.Retries, 1)
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Duration(50*i) * time.Millisecond):
			}
		}
		rctx, cancel := context.WithTimeout(ctx, p.timeout())
		err = call(rctx)
		cancel()
		if err == nil || !retryable(err) {
			return err
		}
		p.logger().Debug("quit attempt failed", "attempt", i+1, "error", err)
	}
	return err
}

func retryable(err error) bool {
	var se *envoy.StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	// A connection closed after the request was sent means the proxy is
	// already going away: retrying would only find it gone.
	return !errors.Is(err, envoy.ErrConnectionClosed)
}

// post sends one empty POST to a full URL and returns the status code. The
// caller retries.
func (p *Policy) post(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: p.timeout()}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func (p *Policy) timeout() time.Duration {
	if p.Timeout <= 0 {
		return 5 * time.Second
	}
	return p.Timeout
}

func (p *Policy) procRoot() string {
	if p.ProcRoot == "" {
		return "/proc"
	}
	return p.ProcRoot
}

func (p *Policy) logger() hclog.Logger {
	if p.Logger == nil {
		return hclog.NewNullLogger()
	}
	return p.Logger
}

// signalByName sends sig to every process whose comm is name, without a shell
// or pkill (distroless images have neither). It returns how many it signalled.
func signalByName(procRoot, name string, sig syscall.Signal) (int, error) {
	dirs, err := filepath.Glob(filepath.Join(procRoot, "[0-9]*"))
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	n := 0
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return n, fmt.Errorf("cannot signal %s pid %d: %w", name, pid, err)
		}
		n++
	}
	return n, nil
}
