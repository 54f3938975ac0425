// Package readiness holds the optional conditions checked after Envoy is
// LIVE and before the app starts. LIVE only says the initial configuration
// is in: a cluster can still have no healthy host, or be warming, when the
// app makes its first call (envoy-admin.md §2.9).
package readiness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
)

// DefaultPeriod is the interval between checks when Waiter.Period is zero.
const DefaultPeriod = 200 * time.Millisecond

// ErrNotMet is wrapped by Wait's error when a fatal condition did not hold
// within its deadline.
var ErrNotMet = errors.New("readiness condition not met")

// Check reports whether a condition holds now and what it saw. It must be
// bounded on its own (every request has a timeout).
type Check func(ctx context.Context) (ok bool, detail string, err error)

// Condition is one readiness condition.
type Condition struct {
	Name  string
	Check Check
	// Deadline is how long Check is retried. It must be above zero: a
	// condition that waits forever would hold a Job forever.
	Deadline time.Duration
	// Fatal makes a condition that never held fail the start; otherwise
	// the app starts anyway and the miss is logged.
	Fatal bool
}

// Result is how one condition ended.
type Result struct {
	Name   string
	Met    bool
	Fatal  bool
	Detail string // what the last check saw
	Err    error  // the last check's error, if any
	Took   time.Duration
	Checks int
}

// State is "met", "not met (start anyway)" or "not met (fatal)".
func (r Result) State() string {
	switch {
	case r.Met:
		return "met"
	case r.Fatal:
		return "not met (fatal)"
	}
	return "not met (start anyway)"
}

// Waiter checks a set of conditions.
type Waiter struct {
	Conditions []Condition
	// Period is the interval between checks of one condition; zero means
	// DefaultPeriod.
	Period time.Duration
	Logger hclog.Logger
}

// Wait checks every condition at once and then every Period, each until it
// holds or its own deadline passes; the conditions run side by side, so the
// wait is the longest of them, not their sum. The results are in condition
// order. The error wraps ErrNotMet, naming the condition, when a fatal one
// did not hold (the others are then stopped), or is ctx's error when ctx
// ended first.
func (w *Waiter) Wait(ctx context.Context) ([]Result, error) {
	log := w.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	for _, c := range w.Conditions {
		if c.Deadline <= 0 || c.Check == nil {
			return nil, fmt.Errorf("cannot wait for readiness condition %q: it needs a check and a deadline above zero (got %v)", c.Name, c.Deadline)
		}
	}
	period := w.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]Result, len(w.Conditions))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		fatalErr error
	)
	for i, c := range w.Conditions {
		wg.Go(func() {
			r := poll(ctx, c, period)
			results[i] = r
			switch {
			case r.Met:
				log.Info("readiness condition met", "condition", r.Name, "took", r.Took, "checks", r.Checks, "detail", r.Detail)
			case ctx.Err() != nil && r.Took < c.Deadline:
				// Stopped by a signal or by another condition's failure.
			case r.Fatal:
				log.Error("readiness condition not met", "condition", r.Name, "deadline", c.Deadline, "detail", r.Detail, "error", r.Err)
				mu.Lock()
				if fatalErr == nil {
					fatalErr = fmt.Errorf("%w: %s after %s: %s", ErrNotMet, r.Name, c.Deadline, r.why())
				}
				mu.Unlock()
				cancel()
			default:
				log.Warn("readiness condition not met; starting anyway", "condition", r.Name, "deadline", c.Deadline, "detail", r.Detail, "error", r.Err)
			}
		})
	}
	wg.Wait()
	if fatalErr != nil {
		return results, fatalErr
	}
	// Wait's own cancel is deferred, so a ctx error here is the caller's.
	return results, ctx.Err()
}

// why is the last detail, or the last error.
func (r Result) why() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return r.Detail
}

// poll checks c until it holds, its deadline passes or ctx ends.
func poll(ctx context.Context, c Condition, period time.Duration) Result {
	start := time.Now()
	r := Result{Name: c.Name, Fatal: c.Fatal}
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.Took = time.Since(start)
			return r
		case <-t.C:
		}
		ok, detail, err := c.Check(ctx)
		r.Checks++
		if ctx.Err() != nil && !ok {
			// The deadline cut this check short: keep what the last
			// complete one saw, unless there was none.
			if r.Detail == "" && r.Err == nil {
				r.Detail, r.Err = detail, err
			}
			r.Took = time.Since(start)
			return r
		}
		r.Met, r.Detail, r.Err = ok, detail, err
		if ok {
			r.Took = time.Since(start)
			return r
		}
		t.Reset(period)
	}
}

// Once runs each condition's check one time, with timeout, and reports
// what it saw (doctor).
func Once(ctx context.Context, conds []Condition, timeout time.Duration) []Result {
	out := make([]Result, len(conds))
	for i, c := range conds {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		ok, detail, err := c.Check(cctx)
		cancel()
		out[i] = Result{Name: c.Name, Met: ok, Fatal: c.Fatal, Detail: detail, Err: err, Took: time.Since(start), Checks: 1}
	}
	return out
}

// ClustersServing holds when every named cluster is active in /clusters
// with at least one host Envoy can route to (healthy, or degraded).
func ClustersServing(admin *envoy.Client, names []string) Check {
	names = slices.Clone(names)
	return func(ctx context.Context) (bool, string, error) {
		cs, err := admin.Clusters(ctx, names...)
		if err != nil {
			return false, "", err
		}
		byName := make(map[string]envoy.Cluster, len(cs))
		for _, c := range cs {
			byName[c.Name] = c
		}
		ok := true
		var parts []string
		for _, n := range names {
			c, found := byName[n]
			switch {
			case !found:
				ok = false
				parts = append(parts, n+": not active (unknown or warming)")
			default:
				s := c.Serving()
				ok = ok && s > 0
				parts = append(parts, n+": "+strconv.Itoa(s)+" of "+strconv.Itoa(len(c.Hosts))+" hosts serving")
			}
		}
		return ok, strings.Join(parts, "; "), nil
	}
}

// NothingWarming holds when no cluster or listener is warming and the
// workers have started.
func NothingWarming(admin *envoy.Client) Check {
	return func(ctx context.Context) (bool, string, error) {
		w, err := admin.Warming(ctx)
		if err != nil {
			return false, "", err
		}
		return w.Done(), "warming " + w.String(), nil
	}
}

// maxProbeBody is how much of a probe's answer is read before closing.
const maxProbeBody = 64 << 10

// HTTPGet holds when a GET of url answers 2xx within timeout (each
// attempt). It is meant for a URL through the proxy to a dependency, so it
// ignores HTTP_PROXY, opens a fresh connection each time and does not
// follow redirects: a 3xx is not the route working.
func HTTPGet(url string, timeout time.Duration) Check {
	hc := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context) (bool, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, "", fmt.Errorf("cannot probe %s: %w", url, err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, "", fmt.Errorf("cannot probe: %w", err)
		}
		_, _ = io.CopyN(io.Discard, resp.Body, maxProbeBody)
		_ = resp.Body.Close()
		ok := resp.StatusCode >= 200 && resp.StatusCode < 300
		return ok, "GET " + url + ": status " + strconv.Itoa(resp.StatusCode), nil
	}
}
