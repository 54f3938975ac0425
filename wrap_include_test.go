package main

import (
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

// Issue 14.12: ENVOY_LIFECYCLE_DRAIN_INCLUDE selecting stats outside the
// default's server-side /stats filter used to end the drain at once ("stat
// missing") with a connection still open. Here the include counts the HTTP
// connection manager's connections, which the listener filter hides.
func TestDrainIncludeOutsideDefaultFilter(t *testing.T) {
	t.Parallel()
	const include = `^http\.ingress_http\.downstream_cx_active$`
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_DRAIN_INCLUDE="+include), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)

	// Two polls with the connection open: the drain must still be waiting.
	envoytest.WaitRequests(t, e, "/stats", 2)
	if l, ok := p.Line(time.Millisecond); ok {
		t.Fatalf("app got %q while a connection was still open", l)
	}
	h.Release()
	if err := <-inflight; err != nil {
		t.Errorf("the in-flight request failed: %v", err)
	}
	p.ExpectLine("TERM")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	stderr := p.Stderr.String()
	if strings.Contains(stderr, "stat_missing") || strings.Contains(stderr, "no connection stat matched") || !strings.Contains(stderr, "open connections: count=1") {
		t.Errorf("the drain did not count the included stat:\n%s", stderr)
	}
	// Every poll's server-side filter lets the included stat through.
	for _, r := range e.Requests() {
		if r.Path != "/stats" {
			continue
		}
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		if f := q.Get("filter"); f != "" && f != include && !strings.Contains(r.RawQuery, "total") {
			t.Errorf("/stats filter got %q, want the include %q or none", f, include)
		}
	}
	testproc.WaitFor(t, "envoy to be told to quit", func() bool { return envoytest.Posts(e.Requests(), "/quitquitquit") == 1 })
}
