package quit

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
)

// startBareEnvoy starts a fake with no upstream (requests get the no-route
// 404, and are still counted) and a client for its admin.
func startBareEnvoy(t *testing.T) (*envoyfake.Envoy, *envoy.Client) {
	t.Helper()
	e := envoytest.Start(t, envoyfake.Options{})
	return e, envoytest.Client(t, e.AdminURL())
}

// get sends one request through the fake's listener on hc.
func get(t *testing.T, hc *http.Client, e *envoyfake.Envoy) error {
	resp, err := hc.Get("http://" + e.ListenerAddr() + "/")
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func TestDrainQuietAgainstTheFake(t *testing.T) {
	t.Parallel()
	none := envoy.Selector{Include: regexp.MustCompile(`^no\.such\.stat$`)}
	tests := []struct {
		name        string
		before      int  // requests sent before the drain
		keepSending bool // a keep-alive client sends until the drain ends
		arrivals    envoy.Arrivals
		quiet       Quiet
		wantQuiet   QuietReason
		atLeast     time.Duration
		below       time.Duration
	}{
		{name: "never had traffic: no wait", quiet: Quiet{Window: time.Hour},
			wantQuiet: QuietIdle, below: 5 * time.Second},
		{name: "traffic that stopped", before: 3, quiet: Quiet{Window: 150 * time.Millisecond, Period: 10 * time.Millisecond},
			wantQuiet: QuietReached, atLeast: 150 * time.Millisecond, below: 5 * time.Second},
		{name: "keep-alive traffic is bounded", before: 1, keepSending: true,
			// A window long enough that a loaded machine does not pause the
			// client for a whole one.
			quiet:     Quiet{Window: time.Second, Period: 20 * time.Millisecond, Max: 2 * time.Second},
			wantQuiet: QuietMax, atLeast: 2 * time.Second, below: 10 * time.Second},
		{name: "stats missing: the fixed delay", before: 1, arrivals: envoy.Arrivals{Conn: none, Request: none},
			quiet: Quiet{Window: time.Hour}, wantQuiet: QuietMissing, atLeast: 300 * time.Millisecond, below: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, admin := startBareEnvoy(t)
			hc := &http.Client{Timeout: 5 * time.Second}
			defer hc.CloseIdleConnections()
			for range tc.before {
				if err := get(t, hc, e); err != nil {
					t.Fatal(err)
				}
			}
			stop, sent := make(chan struct{}), make(chan int, 1)
			if tc.keepSending {
				go func() {
					n := 0
					defer func() { sent <- n }()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if get(t, hc, e) == nil {
							n++
						}
					}
				}()
			}
			q := tc.quiet
			d := Drain{Admin: admin, Delay: 300 * time.Millisecond, Quiet: &q, Arrivals: tc.arrivals,
				Period: 10 * time.Millisecond, Deadline: 20 * time.Second}
			res := d.Run(context.Background(), false)
			close(stop)
			if tc.keepSending {
				if n := <-sent; n < 2 {
					t.Fatalf("the keep-alive client sent %d requests, want a stream", n)
				}
			}
			if res.Quiet != tc.wantQuiet || res.Reason != ReasonDrained {
				t.Errorf("result got quiet %q, reason %q; want %q, drained", res.Quiet, res.Reason, tc.wantQuiet)
			}
			if res.Delayed < tc.atLeast || res.Delayed >= tc.below {
				t.Errorf("Delayed got %v, want in [%v, %v)", res.Delayed, tc.atLeast, tc.below)
			}
		})
	}
}
