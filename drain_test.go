package main

import (
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

// drainEnv is a graceful-termination setup with short, test-sized settings.
func drainEnv(e *envoyfake.Envoy, extra ...string) []string {
	return append([]string{
		"ENVOY_ADMIN_API=" + e.AdminURL(),
		"ENVOY_LIFECYCLE_DRAIN_DELAY=50ms",
		"ENVOY_LIFECYCLE_DRAIN_SKIP_IDLE=false",
		"ENVOY_LIFECYCLE_DRAIN_PERIOD=20ms",
		"ENVOY_LIFECYCLE_DRAIN_DEADLINE=30s",
	}, extra...)
}

// touchListener opens and closes one connection, so the listener has
// accepted a connection in its life.
func touchListener(t *testing.T, e *envoyfake.Envoy) {
	t.Helper()
	c, err := net.Dial("tcp", e.ListenerAddr())
	if err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, "the fake to count the connection", func() bool { return e.ActiveConnections() == 1 })
	c.Close()
	testproc.WaitFor(t, "the connection to close", func() bool { return e.ActiveConnections() == 0 })
}

// termMidDrain starts the wrapper around echo-signals with a request held
// open, sends SIGTERM and returns once the drain is polling connections: the
// app's SIGTERM is then held until the drain ends.
func termMidDrain(t *testing.T) (*envoyfake.Envoy, *proc) {
	t.Helper()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	p := start(t, drainEnv(e), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)
	envoytest.WaitRequests(t, e, "/stats", 1)
	return e, p
}

// order returns the admin paths (with query for drain_listeners) the fake
// saw, polls and duplicates of consecutive entries folded.
func order(reqs []envoyfake.Request) []string {
	var out []string
	for _, r := range reqs {
		p := r.Method + " " + r.Path
		if r.Path == "/drain_listeners" {
			p += "?" + r.RawQuery
		}
		if r.Path == "/server_info" {
			continue
		}
		if len(out) > 0 && out[len(out)-1] == p {
			continue
		}
		out = append(out, p)
	}
	return out
}

func TestTermDrainsEnvoyBeforeTheApp(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	p := start(t, drainEnv(e), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)

	// Two polls after the drain started: a period has passed with the
	// connection open, and the app must not have its SIGTERM yet.
	envoytest.WaitRequests(t, e, "/stats", 2)
	if l, ok := p.Line(time.Millisecond); ok {
		t.Fatalf("app got %q while a connection was still open", l)
	}
	if testproc.IsClosed(p.Done()) {
		t.Fatalf("envoy-lifecycle exited while a connection was still open")
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
	waitQuit(t, e.Quit(), "envoy")
	want := []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful&inboundonly", "GET /stats", "POST /quitquitquit"}
	if got := order(e.Requests()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("admin calls got %q, want %q", got, want)
	}
	if !strings.Contains(p.Stderr.String(), "open connections: count=1") {
		t.Errorf("the drain did not log the connections left at each poll:\n%s", p.Stderr.String())
	}
}

func TestSecondSignalSkipsTheDrain(t *testing.T) {
	t.Parallel()
	for _, second := range []string{"TERM", "INT"} {
		t.Run(second, func(t *testing.T) {
			t.Parallel()
			_, p := termMidDrain(t)
			p.Signal(signalNamed(second))
			// The held signals go back to back, each name once (a repeated
			// TERM only cut the drain short). The kernel delivers pending
			// signals lowest number first, so only the set is certain.
			want := map[string]bool{"TERM": true, second: true}
			for len(want) > 0 {
				l, ok := p.Line(10 * time.Second)
				if !ok || !want[l] {
					t.Fatalf("stdout line got %q (ok=%v), want one of %v", l, ok, want)
				}
				delete(want, l)
			}
			p.Stdin.Close()
			if got := p.ExitCode(); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
			for l, ok := p.Line(time.Second); ok; l, ok = p.Line(time.Second) {
				t.Errorf("app got %q after its signals: a held signal was forwarded twice", l)
			}
			if !strings.Contains(p.Stderr.String(), "reason=cancelled") {
				t.Errorf("drain did not end as cancelled:\n%s", p.Stderr.String())
			}
		})
	}
}

func TestDrainDeadlineWithConnectionsOpen(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_DRAIN_DEADLINE=300ms"), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)
	p.ExpectLine("TERM")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if !strings.Contains(p.Stderr.String(), "reason=deadline connections=1") {
		t.Errorf("drain did not end at the deadline with the connection counted:\n%s", p.Stderr.String())
	}
}

func TestHealthcheckFailErrorDoesNotStopTheDrain(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{FailHealthcheckStatus: http.StatusInternalServerError})
	p := start(t, drainEnv(e), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)
	p.ExpectLine("TERM")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if n := len(posts(e.Requests(), "/healthcheck/fail")); n != 3 {
		t.Errorf("healthcheck/fail attempts got %d, want 3", n)
	}
	if len(posts(e.Requests(), "/drain_listeners")) != 1 {
		t.Error("listeners were not drained after the health-check failure")
	}
}

func TestAdminGoneDuringTheDrain(t *testing.T) {
	t.Parallel()
	e, p := termMidDrain(t)
	e.Kill()
	p.ExpectLine("TERM")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if !strings.Contains(p.Stderr.String(), `reason="admin unreachable"`) {
		t.Errorf("drain did not end on the unreachable admin:\n%s", p.Stderr.String())
	}
}

func TestOldEnvoyWithoutDrainListeners(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{Version: "1.11.0"}) // the newest release without /drain_listeners
	p := start(t, drainEnv(e), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)
	p.ExpectLine("TERM")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if !strings.Contains(p.Stderr.String(), "before 1.12") {
		t.Errorf("the 404 was not logged:\n%s", p.Stderr.String())
	}
}

func TestStopTimeoutKillsAnAppIgnoringTerm(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_STOP_TIMEOUT=200ms"), app("ignore-term")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)
	if got := p.ExitCode(); got != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code got %d, want %d", got, 128+int(syscall.SIGKILL))
	}
	waitQuit(t, e.Quit(), "envoy")
}

func TestDrainOffForwardsAtOnce(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_DRAIN=false"), app("echo-signals")...)
	p.ExpectLine("ready")
	p.Signal(syscall.SIGTERM)
	p.ExpectLine("TERM")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	waitQuit(t, e.Quit(), "envoy")
	if got := order(e.Requests()); len(got) != 1 || got[0] != "POST /quitquitquit" {
		t.Errorf("admin calls got %q, want only the quit", got)
	}
}

// TestFinishedJobDrainsWithoutDelay: the app exits by itself, so the drain
// runs without its (here absurd) delay and the proxy is stopped.
func TestFinishedJobDrainsWithoutDelay(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_DRAIN_DELAY=25s"), app("exit", "0")...) // longer than exitCode waits
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	want := []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful&inboundonly", "GET /stats", "POST /quitquitquit"}
	if got := order(e.Requests()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("admin calls got %q, want %q", got, want)
	}
}

// TestIdlePodSkipsTheDelay: a pod whose listeners never accepted a
// connection (a cancelled Job) needs no endpoint delay; one that did waits.
func TestIdlePodSkipsTheDelay(t *testing.T) {
	t.Parallel()
	for _, used := range []bool{false, true} {
		name := "idle"
		if used {
			name = "used"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{})
			if used {
				touchListener(t, e)
			}
			p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_DRAIN_SKIP_IDLE=true", "ENVOY_LIFECYCLE_DRAIN_DELAY=300ms"), app("echo-signals")...)
			p.ExpectLine("ready")
			p.Signal(syscall.SIGTERM)
			p.ExpectLine("TERM")
			p.Stdin.Close()
			p.ExitCode()
			skipped := strings.Contains(p.Stderr.String(), "skipping the endpoint delay")
			waited := strings.Contains(p.Stderr.String(), "waiting for endpoints to be deprogrammed")
			if skipped == used || waited != used {
				t.Errorf("delay skipped=%v waited=%v for a %s pod:\n%s", skipped, waited, name, p.Stderr.String())
			}
		})
	}
}

// TestAppExitDuringTheDrainDoesNotDrainAgain: the app ends on its own while
// a SIGTERM drain waits; the drain stops and is not run a second time.
func TestAppExitDuringTheDrainDoesNotDrainAgain(t *testing.T) {
	t.Parallel()
	e, p := termMidDrain(t)
	p.Stdin.Close() // the app exits by itself, SIGTERM still held
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if n, m := len(posts(e.Requests(), "/healthcheck/fail")), len(posts(e.Requests(), "/drain_listeners")); n != 1 || m != 1 {
		t.Errorf("healthcheck/fail and drain_listeners got %d and %d calls, want 1 each", n, m)
	}
	waitQuit(t, e.Quit(), "envoy")
}

// TestOneShutdownDeadline: a quit API that never answers cannot stretch a
// graceful termination past its budget (DRAIN_DEADLINE + STOP_TIMEOUT + 3s).
func TestOneShutdownDeadline(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	p := start(t, drainEnv(e,
		"ISTIO_QUIT_API=http://"+hole.Addr().String(),
		"ENVOY_LIFECYCLE_DRAIN_DEADLINE=1s",
		"ENVOY_LIFECYCLE_STOP_TIMEOUT=1s",
		"QUIT_REQUEST_TIMEOUT=5s",
	), app("echo-signals")...)
	p.ExpectLine("ready")
	sent := time.Now()
	p.Signal(syscall.SIGTERM)
	p.ExpectLine("TERM")
	p.Stdin.Close()
	p.ExitCode()
	// Budget 1s + 1s + 3s. Without the one deadline, three 5s quit attempts
	// would take 15s; the slack covers a loaded machine.
	if took := time.Since(sent); took > 8*time.Second {
		t.Errorf("termination took %v, want within its 5s budget", took)
	}
	if !strings.Contains(p.Stderr.String(), "cannot stop istio") {
		t.Errorf("the failed quit was not logged:\n%s", p.Stderr.String())
	}
}
