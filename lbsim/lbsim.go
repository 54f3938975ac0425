// Package lbsim simulates a load balancer in front of one pod: workers keep
// requests going to the pod's Envoy listener while a health checker polls
// Envoy's health path; once the check fails, the pod is taken out of
// rotation after a deprogramming delay, as kube-proxy or a cloud load
// balancer would. It is the traffic side of the graceful-termination tests
// and benchmarks.
//
// Checked against kube-proxy (iptables mode) by ../e2e's rollout test: there
// the endpoint leaves the Service's EndpointSlice when the pod starts
// terminating, not after a failed health check, and kube-proxy rewrites
// its rules within about a second; Deprogram stands for both. A drain delay
// longer than Deprogram here is what the real rollout needs too.
package lbsim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// LB is a simulated load balancer. Set the fields, then call Run.
type LB struct {
	// Target is the pod's listener, host:port.
	Target string
	// Path is requested by the workers; HealthPath by the health checker.
	Path, HealthPath string
	// HealthTarget is where the health checker sends HealthPath, host:port:
	// a load balancer that health-checks another port of the pod (an AWS
	// NLB checking a sidecar). Empty means Target.
	HealthTarget string
	// Workers is the number of concurrent clients; zero means 4.
	Workers int
	// HealthInterval is the health-check period; zero means 50ms.
	HealthInterval time.Duration
	// Deprogram is how long after the first failed health check the pod
	// stops getting new requests.
	Deprogram time.Duration
	// Timeout bounds each request; zero means 5s.
	Timeout time.Duration
	// StopOnFailure ends Run at the first failed request, as a caller that
	// only needs to know whether one fails would.
	StopOnFailure bool
}

// Stats counts what the workers saw.
type Stats struct {
	OK, Failed int64
	// FirstFailure describes one failure, for test messages.
	FirstFailure string
	// OutOfRotation is when new requests stopped (zero if never).
	OutOfRotation time.Time
}

// Run sends load until ctx ends or the pod is out of rotation and every
// worker has finished its last request. ok is closed once the first request
// succeeded, so callers can wait for traffic to flow.
func (lb *LB) Run(ctx context.Context, ok chan<- struct{}) Stats {
	var (
		st        Stats
		okN, bad  atomic.Int64
		failOnce  sync.Once
		firstOK   sync.Once
		out       = make(chan struct{}) // closed when out of rotation
		outAt     atomic.Int64
		wg        sync.WaitGroup
		workers   = lb.Workers
		timeout   = lb.Timeout
		hcEvery   = lb.HealthInterval
		failedMsg atomic.Value
	)
	if workers <= 0 {
		workers = 4
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if hcEvery <= 0 {
		hcEvery = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	healthTarget := lb.HealthTarget
	if healthTarget == "" {
		healthTarget = lb.Target
	}
	// Health checker: its own client, like a separate LB component.
	go func() {
		client := &http.Client{Timeout: timeout}
		t := time.NewTicker(hcEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if code, err := get(ctx, client, "http://"+healthTarget+lb.HealthPath); err == nil && code == http.StatusOK {
				continue
			}
			select {
			case <-ctx.Done():
			case <-time.After(lb.Deprogram):
				outAt.Store(time.Now().UnixNano())
				close(out)
			}
			return
		}
	}()

	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: timeout}
			for {
				select {
				case <-ctx.Done():
					return
				case <-out:
					return
				default:
				}
				code, err := get(ctx, client, "http://"+lb.Target+lb.Path)
				switch {
				case ctx.Err() != nil:
					return
				case err == nil && code == http.StatusOK:
					okN.Add(1)
					firstOK.Do(func() {
						if ok != nil {
							close(ok)
						}
					})
				default:
					bad.Add(1)
					failOnce.Do(func() { failedMsg.Store(fmt.Sprintf("status %d, error %v", code, err)) })
					if lb.StopOnFailure {
						cancel()
					}
				}
			}
		}()
	}
	wg.Wait()
	st.OK, st.Failed = okN.Load(), bad.Load()
	if m, _ := failedMsg.Load().(string); m != "" {
		st.FirstFailure = m
	}
	if ns := outAt.Load(); ns != 0 {
		st.OutOfRotation = time.Unix(0, ns)
	}
	return st
}

func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}
