// Package envoytest starts the Envoy fake for other packages' tests: closed
// at the end of the test, logging through t.Logf, optionally in front of an
// upstream that holds requests. It lives apart from testproc because
// envoyfake's own tests use testproc, and would import themselves.
package envoytest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/testproc"
)

// Start starts an Envoy fake with o, logging through tb.Logf unless o says
// otherwise, and closes it when the test ends.
func Start(tb testing.TB, o envoyfake.Options) *envoyfake.Envoy {
	tb.Helper()
	if o.Logf == nil {
		o.Logf = tb.Logf
	}
	e, err := envoyfake.Start(o)
	if err != nil {
		tb.Fatalf("cannot start the Envoy fake: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// Client returns an admin client for base (the fake's AdminURL, or any
// address a test wants refused or held) with a one-second timeout per call.
func Client(tb testing.TB, base string) *envoy.Client {
	tb.Helper()
	c, err := envoy.New(base, envoy.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// StartHeld starts an Envoy fake whose listener proxies to a held upstream.
func StartHeld(tb testing.TB, o envoyfake.Options) (*envoyfake.Envoy, *testproc.Held) {
	tb.Helper()
	h := testproc.HeldUpstream(tb)
	o.Upstream = h.Addr()
	e := Start(tb, o)
	tb.Cleanup(h.Release) // first: a held request must not make Close wait
	return e, h
}

// Hold sends a request through e's listener and returns once h holds it and
// e counts one more connection; the channel gets the request's outcome.
func Hold(tb testing.TB, e *envoyfake.Envoy, h *testproc.Held) <-chan error {
	tb.Helper()
	before := e.ActiveConnections()
	done := h.Hold(tb, "http://"+e.ListenerAddr()+"/work")
	testproc.WaitFor(tb, "the fake to count the held connection", func() bool { return e.ActiveConnections() == before+1 })
	return done
}

// WaitRequests waits until e has seen n admin requests for path.
func WaitRequests(tb testing.TB, e *envoyfake.Envoy, path string, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testproc.Timeout)
	defer cancel()
	seen := 0
	if _, err := e.WaitRequest(ctx, func(r envoyfake.Request) bool {
		if r.Path == path {
			seen++
		}
		return seen >= n
	}); err != nil {
		tb.Fatalf("the Envoy fake saw fewer than %d %s: %v", n, path, err)
	}
}

// Posts counts the POSTs to path among reqs.
func Posts(reqs []envoyfake.Request, path string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Path == path {
			n++
		}
	}
	return n
}
