// Package quit decides how the proxy is drained and stopped: fail Envoy's
// health checks, drain its listeners, wait for connections to go, then quit
// it through generic endpoints, Istio's pilot-agent or Envoy itself.
package quit

import (
	"context"
	"errors"
	"fmt"
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
	// Generic are URLs POSTed first (other sidecars), all at once, within
	// half of Stop's remaining budget so the proxy's own quit always has the
	// rest. Each is POSTed exactly where it says: no proxy, no redirect.
	// Their status is logged, never used.
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
	if p.callGeneric(ctx) {
		rep.Method = "generic"
	}
	if p.GenericOnly {
		return rep
	}

	stopped := false
	// reset is a quit whose connection closed before the answer: the
	// proxy is probably exiting, but only verify can say it did.
	var reset error
	if p.Istio != nil {
		if !envoy.IsLocal(p.Istio.Base()) {
			log.Warn("not stopping istio: quit api is not local", "url", p.Istio.Base().String())
		} else if err := p.retry(ctx, p.Istio.Quit); err != nil && !errors.Is(err, envoy.ErrConnectionClosed) {
			rep.Err = fmt.Errorf("cannot stop istio: %w", err)
			log.Error("cannot stop istio proxy", "url", p.Istio.Base().String(), "error", err)
		} else {
			stopped, rep.Method, reset = true, "istio", err
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
		if err := p.quitEnvoy(ctx); err != nil && !errors.Is(err, envoy.ErrConnectionClosed) {
			rep.Err = fmt.Errorf("cannot stop envoy: %w", err)
			log.Error("cannot stop envoy", "error", err)
		} else {
			stopped, rep.Method, rep.Err, reset = true, "envoy", nil, err
			log.Info("envoy told to quit", "took", time.Since(start))
		}
	}
	if stopped {
		rep.Gone = p.verify(ctx, reset != nil)
		if reset != nil && !rep.Gone {
			rep.Err = fmt.Errorf("cannot confirm the proxy stopped: %w", reset)
			log.Error("quit request cut off and the proxy was not seen to go away", "error", reset)
		}
	}
	return rep
}

// genericShare is the part of Stop's remaining budget the generic endpoints
// may use: the rest is the proxy's own quit, whatever they do.
const genericShare = 2

// callGeneric POSTs every generic endpoint at once, within a share of ctx's
// budget, and reports whether any answered. Their status is logged, never
// used (envoy-preflight's contract).
func (p *Policy) callGeneric(ctx context.Context) bool {
	if len(p.Generic) == 0 {
		return false
	}
	log := p.logger()
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(dl)/genericShare)
		defer cancel()
	}
	answered := make(chan bool, len(p.Generic))
	for _, u := range p.Generic {
		go func() {
			// Retried like the others on a network error or 5xx.
			var status int
			err := p.retry(ctx, func(ctx context.Context) error {
				var err error
				status, err = envoy.PostURL(ctx, u, p.timeout())
				if err == nil && status >= 500 {
					err = &envoy.StatusError{Method: http.MethodPost, Path: envoy.Redact(u), Code: status}
				}
				return err
			})
			var se *envoy.StatusError
			switch {
			case errors.As(err, &se):
				log.Warn("generic quit endpoint answered an error", "url", envoy.Redact(u), "status", status)
			case err != nil:
				log.Warn("generic quit endpoint failed", "url", envoy.Redact(u), "error", err)
				answered <- false
				return
			default:
				log.Info("generic quit endpoint called", "url", envoy.Redact(u), "status", status)
			}
			answered <- true
		}()
	}
	ok := false
	for range p.Generic {
		ok = <-answered || ok
	}
	return ok
}

func (p *Policy) quitEnvoy(ctx context.Context) error {
	if p.KillURL != "" {
		u := p.KillURL
		if pu, err := url.Parse(u); err != nil || !envoy.IsLocal(pu) {
			return fmt.Errorf("kill url %s is not local", envoy.Redact(u))
		}
		return p.retry(ctx, func(ctx context.Context) error {
			status, err := envoy.PostURL(ctx, u, p.timeout())
			if err == nil && (status < 200 || status > 299) {
				err = &envoy.StatusError{Method: http.MethodPost, Path: envoy.Redact(u), Code: status}
			}
			return err
		})
	}
	if !envoy.IsLocal(p.Envoy.Base()) {
		return fmt.Errorf("admin address %s is not local", p.Envoy.Base())
	}
	return p.retry(ctx, p.Envoy.Quit)
}

// resetVerify bounds the check after a quit whose connection closed before
// the answer when Verify is zero: such an outcome is only "stopped" once
// the proxy is seen to go away (envoy-admin.md §2.7).
const resetVerify = 2 * time.Second

// verify waits, within p.Verify, for the proxy's address to refuse
// connections, and logs the outcome. must checks even when Verify is zero,
// within resetVerify.
func (p *Policy) verify(ctx context.Context, must bool) bool {
	target := p.Envoy
	if target == nil {
		target = p.Istio
	}
	wait := p.Verify
	if wait <= 0 && must {
		wait = resetVerify
	}
	if wait <= 0 || target == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
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
			p.logger().Warn("proxy still answering after quit", "address", target.Base().String(), "waited", wait)
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
