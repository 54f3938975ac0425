package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/shutdownmgr"
)

// mgr is a running `envoy-lifecycle shutdown-manager`.
type mgr struct {
	*proc
	port int
}

// mgrFiles are per-test ready and state files: the defaults under /tmp
// would be shared by tests running in parallel.
func mgrFiles(t *testing.T) (ready, state string) {
	dir := t.TempDir()
	return filepath.Join(dir, "shutdown-ok"), filepath.Join(dir, "state")
}

// mgrEnv clears the manager's bare variables, which baseEnv keeps.
func mgrEnv(env ...string) []string {
	return append([]string{"PORT=", "LOG=", "INTERVAL=", "COOLDOWN=", "SHUTDOWN_MANAGER_LOG_TO_PID1=false", "ENVOY_LIFECYCLE_LOG_FORMAT=json"}, env...)
}

// startManager runs the manager on 127.0.0.1 and a free port, and returns
// once it listens. args must name the admin and the files.
func startManager(t *testing.T, env []string, args ...string) *mgr {
	t.Helper()
	p := start(t, mgrEnv(env...), append([]string{"shutdown-manager", "--address", "127.0.0.1", "--port", "0"}, args...)...)
	m := &mgr{proc: p}
	testproc.WaitFor(t, "the manager to listen", func() bool {
		select {
		case <-p.Done():
			t.Fatalf("manager exited before listening:\n%s", p.Stderr.String())
		default:
		}
		m.port = listeningPort(p.Stderr.String())
		return m.port != 0
	})
	return m
}

// listeningPort finds the port in the manager's "listening" JSON log line.
func listeningPort(logs string) int {
	for _, l := range strings.Split(logs, "\n") {
		var line struct {
			Message string `json:"@message"`
			Address string `json:"address"`
		}
		if json.Unmarshal([]byte(l), &line) != nil || line.Message != "listening" {
			continue
		}
		_, port, err := net.SplitHostPort(line.Address)
		if err != nil {
			return 0
		}
		var n int
		fmt.Sscan(port, &n)
		return n
	}
	return 0
}

// logged reports whether a JSON log line has message msg and every key/value
// of kv (values compared as printed by fmt).
func logged(logs, msg string, kv ...any) bool {
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["@message"] != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(m[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// mgrClient allows many connections at once, for the waiters test.
var mgrClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 256},
}

type mgrAnswer struct {
	status int
	body   string
	err    error
	at     time.Time
}

func (m *mgr) get(path string, kv ...string) mgrAnswer {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", m.port, path), nil)
	if err != nil {
		return mgrAnswer{err: err}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := mgrClient.Do(req)
	if err != nil {
		return mgrAnswer{err: err, at: time.Now()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return mgrAnswer{status: resp.StatusCode, body: string(b), err: err, at: time.Now()}
}

func (m *mgr) goGet(path string, kv ...string) <-chan mgrAnswer {
	ch := make(chan mgrAnswer, 1)
	go func() { ch <- m.get(path, kv...) }()
	return ch
}

// state reads /status.
func (m *mgr) state(t *testing.T) shutdownmgr.Status {
	t.Helper()
	a := m.get("/status")
	var st shutdownmgr.Status
	if a.err != nil || json.Unmarshal([]byte(a.body), &st) != nil {
		t.Fatalf("GET /status: %v %q", a.err, a.body)
	}
	return st
}

func (m *mgr) waitWaiters(t *testing.T, n int) {
	t.Helper()
	testproc.WaitFor(t, fmt.Sprintf("%d waiting requests", n), func() bool { return m.state(t).Waiters == n })
}

func mgrRecv(t *testing.T, ch <-chan mgrAnswer, what string) mgrAnswer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		return a
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no answer in 15s", what)
	}
	return mgrAnswer{}
}

func mgrPending(t *testing.T, ch <-chan mgrAnswer, what string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("%s answered too early: %d %q %v", what, a.status, a.body, a.err)
	default:
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// adminReady reads the fake's GET /ready.
func adminReady(t *testing.T, e *envoyfake.Envoy) (int, string) {
	t.Helper()
	resp, err := mgrClient.Get(e.AdminURL() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestManagerShutdownHandlerLayout: Envoy's preStop is /shutdown, the
// manager's /waitforshutdown (wrossmorrow/envoy-shutdown-handler), with the
// admin given as scheme, host and port.
func TestManagerShutdownHandlerLayout(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	u, _ := url.Parse(e.AdminURL())
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin-scheme", "http", "--envoy-admin-host", u.Hostname(), "--envoy-admin-port", u.Port(),
		"--ready-file", ready, "--state-file", state)

	waitfor := m.goGet("/waitforshutdown")
	m.waitWaiters(t, 1)
	shutdown := m.goGet("/shutdown?delay=0&period=0.02&deadline=30")
	envoytest.WaitRequests(t, e, "/stats", 3)
	mgrPending(t, shutdown, "/shutdown")
	mgrPending(t, waitfor, "/waitforshutdown")
	if code, body := adminReady(t, e); code != http.StatusServiceUnavailable || body != "DRAINING\n" {
		t.Errorf("envoy /ready during the drain got %d %q, want 503 DRAINING", code, body)
	}

	h.Release()
	if err := <-inflight; err != nil {
		t.Errorf("the held request failed: %v", err)
	}
	a := mgrRecv(t, shutdown, "/shutdown")
	if a.status != http.StatusOK || !strings.HasPrefix(a.body, "drained: 0 open connections") {
		t.Errorf("/shutdown got %d %q, want 200 drained", a.status, a.body)
	}
	b := mgrRecv(t, waitfor, "/waitforshutdown")
	if b.status != http.StatusOK {
		t.Errorf("/waitforshutdown got %d %q, want 200", b.status, b.body)
	}
	// Both are released by the same event; "right after" with a wide margin.
	if gap := b.at.Sub(a.at).Abs(); gap > 500*time.Millisecond {
		t.Errorf("/waitforshutdown returned %v away from /shutdown", gap)
	}
	var reqs []envoyfake.Request // without the test's own GET /ready
	for _, r := range e.Requests() {
		if r.Path != "/ready" {
			reqs = append(reqs, r)
		}
	}
	want := []string{"POST /healthcheck/fail", "POST /drain_listeners?graceful", "GET /stats"}
	if got := order(reqs); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("admin calls got %q, want %q", got, want)
	}
	// The log lines come through a pipe: wait for them.
	testproc.WaitFor(t, "a JSON line per poll with the count, and the end with a context", func() bool {
		logs := m.Stderr.String()
		return logged(logs, "open connections", "count", 1) && logged(logs, "open connections", "count", 0) &&
			logged(logs, "drain finished", "reason", "drained", "context", "drain")
	})
	if !exists(ready) {
		t.Error("ready file not written")
	}
	// The manager's own SIGTERM comes after its preStop: it exits at once.
	m.Signal(syscall.SIGTERM)
	if got := m.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
}

func TestManagerDeadlineIs408(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)
	waitfor := m.goGet("/waitforshutdown?deadline=30")
	m.waitWaiters(t, 1)
	a := m.get("/shutdown?delay=0&period=0.02&deadline=0.3")
	if a.status != http.StatusRequestTimeout || !strings.Contains(a.body, "1 connections still open") {
		t.Errorf("/shutdown got %d %q, want 408 with 1 connection", a.status, a.body)
	}
	if n := e.ActiveConnections(); n != 1 {
		t.Errorf("fake connections got %d, want the held one", n)
	}
	if b := mgrRecv(t, waitfor, "/waitforshutdown"); b.status != http.StatusRequestTimeout {
		t.Errorf("/waitforshutdown got %d %q, want the drain's 408", b.status, b.body)
	}
	testproc.WaitFor(t, "the deadline logged with the connection counted", func() bool {
		return logged(m.Stderr.String(), "drain finished", "reason", "deadline", "connections", 1)
	})
}

// TestManagerReadyFileFromDrainProcess is Contour's layout: Envoy's preStop
// /shutdown waits for the ready file; `envoy-lifecycle drain`, another
// process, drains and writes it.
func TestManagerReadyFileFromDrainProcess(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file-only", "--ready-file", ready,
		"--ready-file-interval", "20ms", "--state-file", state)
	shutdown := m.goGet("/shutdown")
	m.waitWaiters(t, 1)

	d := start(t, mgrEnv("SHUTDOWN_MANAGER_READY_FILE="+ready, "SHUTDOWN_MANAGER_STATE_FILE="+state),
		"drain", "--envoy-admin", e.AdminURL(), "--delay", "0", "--period", "20ms", "--log-to-pid1", "false")
	envoytest.WaitRequests(t, e, "/stats", 3)
	mgrPending(t, shutdown, "/shutdown")
	if exists(ready) {
		t.Error("ready file written while a connection is open")
	}
	h.Release()
	<-inflight
	if got := d.ExitCode(); got != 0 {
		t.Errorf("drain exit code got %d, want 0:\n%s", got, d.Stderr.String())
	}
	if a := mgrRecv(t, shutdown, "/shutdown"); a.status != http.StatusOK || !strings.Contains(a.body, "ready file") {
		t.Errorf("/shutdown got %d %q, want 200 on the ready file", a.status, a.body)
	}
	if n := len(posts(e.Requests(), "/healthcheck/fail")); n != 1 {
		t.Errorf("healthcheck/fail calls got %d, want 1 (the drain process only)", n)
	}
	if !logged(d.Stderr.String(), "drain finished", "reason", "drained") {
		t.Errorf("drain process did not log JSON:\n%s", d.Stderr.String())
	}
}

// TestManagerMarin3rLayout: Envoy's preStop /shutdown and the manager's
// preStop /drain join one drain, which never calls /drain_listeners with
// --drain-listeners=false, and writes the ready file.
func TestManagerMarin3rLayout(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state,
		"--check-drain-delay", "0", "--check-drain-interval", "0.02", "--min-open-connections", "0", "--drain-listeners=false")
	drain := m.goGet("/drain")
	envoytest.WaitRequests(t, e, "/stats", 1)
	shutdown := m.goGet("/shutdown")
	m.waitWaiters(t, 2)
	h.Release()
	<-inflight
	for _, ch := range []<-chan mgrAnswer{drain, shutdown} {
		if a := mgrRecv(t, ch, "hook"); a.status != http.StatusOK {
			t.Errorf("hook got %d %q, want 200", a.status, a.body)
		}
	}
	if n := len(posts(e.Requests(), "/healthcheck/fail")); n != 1 {
		t.Errorf("healthcheck/fail calls got %d, want 1: one drain", n)
	}
	if n := len(posts(e.Requests(), "/drain_listeners")); n != 0 {
		t.Errorf("drain_listeners calls got %d, want 0", n)
	}
	if !exists(ready) {
		t.Error("ready file not written")
	}
}

// TestManagerSigtermFlipsReadiness: SIGTERM fails /readyz and the
// load-balancer path while /healthz stays 200, and does not drain Envoy.
func TestManagerSigtermFlipsReadiness(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	ready, state := mgrFiles(t)
	m := startManager(t, []string{"INTERVAL=100ms", "COOLDOWN=100ms"}, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)
	for path, want := range map[string]int{"/readyz": 200, "/healthz": 200, "/nlb-health": 200} {
		if a := m.get(path); a.status != want {
			t.Errorf("before SIGTERM: %s got %d, want %d", path, a.status, want)
		}
	}
	m.Signal(syscall.SIGTERM)
	testproc.WaitFor(t, "/readyz to fail", func() bool { return m.get("/readyz").status == http.StatusServiceUnavailable })
	for path, want := range map[string]int{"/readyz": 503, "/healthz": 200, "/nlb-health": 503, "/": 503} {
		if a := m.get(path); a.status != want {
			t.Errorf("after SIGTERM: %s got %d %q, want %d", path, a.status, a.body, want)
		}
	}
	if got := m.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("SIGTERM alone made %d admin calls; it must not drain", n)
	}
}

// TestManagerWaitzAfterProbesStop is k8s-prestop-sidecar's layout: the
// app's preStop calls /waitz; the manager gets SIGTERM; a simulated load
// balancer probes every 20ms until it sees three 503s in a row.
func TestManagerWaitzAfterProbesStop(t *testing.T) {
	t.Parallel()
	// The quiet window is 50 probe periods: a scheduler stall on a loaded
	// machine must not pass for the probes stopping.
	const period = 20 * time.Millisecond
	const interval, cooldown = 50 * period, 200 * time.Millisecond
	e := envoytest.Start(t, envoyfake.Options{})
	ready, state := mgrFiles(t)
	m := startManager(t, []string{"INTERVAL=" + interval.String(), "COOLDOWN=" + cooldown.String(), "LOG=yes"},
		"--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)

	var mu sync.Mutex
	var lastSent time.Time
	probes, failures := 0, 0
	lbDone := make(chan struct{})
	stopLB := make(chan struct{})
	go func() { // the load balancer: its own probe interval, not a sync
		defer close(lbDone)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for fails := 0; fails < 3; {
			select {
			case <-stopLB:
				return
			case <-tick.C:
			}
			mu.Lock()
			lastSent = time.Now()
			mu.Unlock()
			a := m.get("/lb")
			mu.Lock()
			probes++
			if a.status == http.StatusServiceUnavailable {
				fails++
				failures++
			} else {
				fails = 0
			}
			mu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-lbDone:
		default:
			close(stopLB)
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return probes }

	waitz := m.goGet("/waitz")
	m.waitWaiters(t, 1)
	// Two quiet windows' worth of probes: /waitz must still be waiting.
	start := count()
	testproc.WaitFor(t, "the probes", func() bool { return count() >= start+int(2*(interval+cooldown)/period) })
	mgrPending(t, waitz, "/waitz")

	m.Signal(syscall.SIGTERM)
	select {
	case <-lbDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the load balancer never saw the 503s")
	}
	a := mgrRecv(t, waitz, "/waitz")
	mu.Lock()
	quiet := a.at.Sub(lastSent)
	mu.Unlock()
	if a.status != http.StatusOK {
		t.Errorf("/waitz got %d %q, want 200", a.status, a.body)
	}
	if quiet < interval+cooldown || quiet > interval+cooldown+2*time.Second {
		t.Errorf("/waitz returned %v after the last probe, want INTERVAL+COOLDOWN (%v) and a little", quiet, interval+cooldown)
	}
	if got := m.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if !logged(m.Stderr.String(), "load-balancer hit", "status", 503) {
		t.Errorf("LOG=yes did not log the hits:\n%s", m.Stderr.String())
	}
}

// TestManagerRestartUndoesHealthcheckFail: the manager is SIGKILLed mid
// drain and restarted (so its pod is not terminating); the new one finds
// the state file and makes Envoy healthy again (projectcontour/contour#4851).
func TestManagerRestartUndoesHealthcheckFail(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	ready, state := mgrFiles(t)
	args := []string{"--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state, "--period", "20ms", "--delay", "0"}
	m1 := startManager(t, nil, args...)
	shutdown := m1.goGet("/shutdown")
	envoytest.WaitRequests(t, e, "/stats", 2)
	if code, _ := adminReady(t, e); code != http.StatusServiceUnavailable {
		t.Fatalf("envoy /ready during the drain got %d, want 503", code)
	}
	m1.Signal(syscall.SIGKILL)
	<-m1.Done()
	if a := <-shutdown; a.err == nil {
		t.Errorf("/shutdown of a killed manager got %d %q", a.status, a.body)
	}
	if !exists(state) {
		t.Fatal("no state file left by the killed manager")
	}

	m2 := startManager(t, nil, args...)
	envoytest.WaitRequests(t, e, "/healthcheck/ok", 1)
	if code, body := adminReady(t, e); code != http.StatusOK || body != "LIVE\n" {
		t.Errorf("envoy /ready after the restart got %d %q, want 200 LIVE", code, body)
	}
	testproc.WaitFor(t, "the state file to be cleared", func() bool { return !exists(state) })
	testproc.WaitFor(t, "the restore to be logged", func() bool { return logged(m2.Stderr.String(), "health checks restored") })
	if st := m2.state(t); st.Terminating || st.Drain != "none" {
		t.Errorf("restarted manager state got %+v, want idle", st)
	}
}

func TestManagerToken(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	ready, state := mgrFiles(t)
	m := startManager(t, []string{"SHUTDOWN_MANAGER_TOKEN=k8s-hook-token"}, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)
	if a := m.get("/shutdown?delay=0"); a.status != http.StatusUnauthorized {
		t.Errorf("/shutdown without token got %d %q, want 401", a.status, a.body)
	}
	if a := m.get("/shutdown?delay=0", shutdownmgr.TokenHeader, "wrong"); a.status != http.StatusForbidden {
		t.Errorf("/shutdown with a wrong token got %d %q, want 403", a.status, a.body)
	}
	if a := m.get("/waitz", shutdownmgr.TokenHeader, "wrong"); a.status != http.StatusForbidden {
		t.Errorf("/waitz with a wrong token got %d %q, want 403", a.status, a.body)
	}
	if n := len(e.Requests()); n != 0 {
		t.Fatalf("refused requests made %d admin calls", n)
	}
	for _, path := range []string{"/healthz", "/readyz", "/lb"} {
		if a := m.get(path); a.status != http.StatusOK {
			t.Errorf("%s without token got %d, want 200", path, a.status)
		}
	}
	if a := m.get("/shutdown?delay=0", shutdownmgr.TokenHeader, "k8s-hook-token"); a.status != http.StatusOK {
		t.Errorf("/shutdown with the token got %d %q, want 200", a.status, a.body)
	}
}

func TestManagerBadQuery(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)
	cases := []struct {
		query, want string
		drainOnly   bool // /waitforshutdown uses neither delay nor period
	}{
		{"delay=-1", `delay="-1": negative`, false},
		{"delay=soon", `delay="soon": cannot parse`, false},
		{"period=0", `period="0": must be greater than 0`, false},
		{"period=-0.5", `period="-0.5": negative`, false},
		{"deadline=2&delay=1&period=1.5", `deadline="2": is shorter than delay+period (2.5s)`, true},
		{"deadline=abc", `deadline="abc": cannot parse`, false},
	}
	for _, c := range cases {
		paths := []string{"/shutdown", "/drain", "/waitforshutdown"}
		if c.drainOnly {
			paths = paths[:2]
		}
		for _, path := range paths {
			a := m.get(path + "?" + c.query)
			if a.status != http.StatusBadRequest || !strings.HasPrefix(a.body, c.want) || strings.Count(a.body, "\n") != 1 {
				t.Errorf("%s?%s got %d %q, want 400 %q on one line", path, c.query, a.status, a.body, c.want)
			}
		}
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("bad queries made %d admin calls", n)
	}
	if st := m.state(t); st.Terminating {
		t.Error("a bad query started the termination")
	}
}

// TestManager200Waiters: 200 hooks wait at once and all get their answer;
// one past --max-waiters gets 503.
func TestManager200Waiters(t *testing.T) {
	t.Parallel()
	e, h := envoytest.StartHeld(t, envoyfake.Options{})
	inflight := envoytest.Hold(t, e, h)
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state,
		"--max-waiters", "200", "--delay", "0", "--period", "20ms")
	var chans []<-chan mgrAnswer
	for i := 0; i < 200; i++ {
		path := "/shutdown"
		if i%2 == 1 {
			path = "/waitforshutdown"
		}
		chans = append(chans, m.goGet(path))
	}
	m.waitWaiters(t, 200)
	if a := m.get("/waitforshutdown"); a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "max 200") {
		t.Errorf("waiter 201 got %d %q, want 503", a.status, a.body)
	}
	if a := m.get("/healthz"); a.status != http.StatusOK {
		t.Errorf("/healthz with the waiters full got %d", a.status)
	}
	h.Release()
	<-inflight
	for i, ch := range chans {
		if a := mgrRecv(t, ch, fmt.Sprintf("waiter %d", i)); a.status != http.StatusOK {
			t.Errorf("waiter %d got %d %q, want 200", i, a.status, a.body)
		}
	}
	if n := len(posts(e.Requests(), "/healthcheck/fail")); n != 1 {
		t.Errorf("healthcheck/fail calls got %d, want 1", n)
	}
}

// TestManagerExitAnswersWaiters: on SIGTERM a drain in progress finishes
// and is answered; a waiter with nothing to wait for is answered 503; the
// manager exits 0.
func TestManagerExitAnswersWaiters(t *testing.T) {
	t.Parallel()
	t.Run("waiting for nothing", func(t *testing.T) {
		t.Parallel()
		e := envoytest.Start(t, envoyfake.Options{})
		ready, state := mgrFiles(t)
		m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)
		waitfor := m.goGet("/waitforshutdown")
		m.waitWaiters(t, 1)
		m.Signal(syscall.SIGTERM)
		if a := mgrRecv(t, waitfor, "/waitforshutdown"); a.status != http.StatusServiceUnavailable {
			t.Errorf("/waitforshutdown at exit got %d %q, want 503", a.status, a.body)
		}
		if got := m.ExitCode(); got != 0 {
			t.Errorf("exit code got %d, want 0", got)
		}
	})
	t.Run("drain in progress", func(t *testing.T) {
		t.Parallel()
		e, h := envoytest.StartHeld(t, envoyfake.Options{})
		inflight := envoytest.Hold(t, e, h)
		ready, state := mgrFiles(t)
		m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state, "--delay", "0", "--period", "20ms")
		shutdown := m.goGet("/shutdown")
		envoytest.WaitRequests(t, e, "/stats", 1)
		m.Signal(syscall.SIGTERM)
		testproc.WaitFor(t, "/readyz to fail", func() bool { return m.get("/readyz").status == http.StatusServiceUnavailable })
		envoytest.WaitRequests(t, e, "/stats", 3)
		mgrPending(t, shutdown, "/shutdown")
		h.Release()
		<-inflight
		if a := mgrRecv(t, shutdown, "/shutdown"); a.status != http.StatusOK {
			t.Errorf("/shutdown got %d %q, want 200", a.status, a.body)
		}
		if got := m.ExitCode(); got != 0 {
			t.Errorf("exit code got %d, want 0", got)
		}
	})
}

func TestManagerDrainOnSignal(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	ready, state := mgrFiles(t)
	m := startManager(t, []string{"SHUTDOWN_MANAGER_DRAIN_ON_SIGNAL=true"}, "--envoy-admin", e.AdminURL(),
		"--ready-file", ready, "--state-file", state, "--delay", "0")
	m.Signal(syscall.SIGTERM)
	if got := m.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if n := len(posts(e.Requests(), "/healthcheck/fail")); n != 1 {
		t.Errorf("healthcheck/fail calls got %d, want 1", n)
	}
	if !exists(ready) {
		t.Error("ready file not written")
	}
}

func TestManagerUnixSocketAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	e := envoytest.Start(t, envoyfake.Options{AdminSocket: sock})
	ready, state := mgrFiles(t)
	// A bare path, as Contour passes it.
	m := startManager(t, nil, "--envoy-admin", sock, "--ready-file", ready, "--state-file", state)
	if a := m.get("/shutdown?delay=0"); a.status != http.StatusOK {
		t.Errorf("/shutdown got %d %q, want 200", a.status, a.body)
	}
	if n := len(posts(e.Requests(), "/healthcheck/fail")); n != 1 {
		t.Errorf("healthcheck/fail over the socket got %d, want 1", n)
	}
}

func TestDrainSubcommandExitCodes(t *testing.T) {
	t.Parallel()
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		e, h := envoytest.StartHeld(t, envoyfake.Options{})
		envoytest.Hold(t, e, h)
		ready, state := mgrFiles(t)
		d := start(t, mgrEnv(), "drain", "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state,
			"--delay", "0", "--period", "20ms", "--deadline", "200ms")
		if got := d.ExitCode(); got != exitDrainDeadline {
			t.Errorf("exit code got %d, want %d", got, exitDrainDeadline)
		}
		if !exists(ready) || !exists(state) {
			t.Error("ready or state file missing after the deadline")
		}
	})
	t.Run("admin unreachable", func(t *testing.T) {
		t.Parallel()
		e := envoytest.Start(t, envoyfake.Options{})
		admin := e.AdminURL()
		e.Kill()
		ready, state := mgrFiles(t)
		d := start(t, mgrEnv(), "drain", "--envoy-admin", admin, "--ready-file", ready, "--state-file", state, "--delay", "0")
		if got := d.ExitCode(); got != exitUnavailable {
			t.Errorf("exit code got %d, want %d", got, exitUnavailable)
		}
	})
	t.Run("signal", func(t *testing.T) {
		t.Parallel()
		e, h := envoytest.StartHeld(t, envoyfake.Options{})
		envoytest.Hold(t, e, h)
		ready, state := mgrFiles(t)
		d := start(t, mgrEnv(), "drain", "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state,
			"--delay", "0", "--period", "20ms")
		envoytest.WaitRequests(t, e, "/stats", 1)
		d.Signal(syscall.SIGTERM)
		if got := d.ExitCode(); got != 128+int(syscall.SIGTERM) {
			t.Errorf("exit code got %d, want 143", got)
		}
		if exists(ready) {
			t.Error("ready file written by a cancelled drain")
		}
	})
}

func TestManagerBadSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		args []string
		want string // the one line, after "envoy-lifecycle <cmd>: "
	}{
		{"bad duration flag", nil, []string{"shutdown-manager", "--delay", "abc"}, `--delay="abc": cannot parse (valid: a duration such as 500ms`},
		{"alias named as given", nil, []string{"shutdown-manager", "--check-drain-interval=0"}, `--check-drain-interval="0": out of range (valid: a duration of at least 10ms`},
		{"bad env", []string{"SHUTDOWN_MANAGER_INTERVAL=forever"}, []string{"shutdown-manager"}, `SHUTDOWN_MANAGER_INTERVAL="forever": cannot parse`},
		{"bad log hits", []string{"SHUTDOWN_MANAGER_LOG_HITS=maybe"}, []string{"shutdown-manager"}, `SHUTDOWN_MANAGER_LOG_HITS="maybe": unknown value (valid: true, false, 1, 0, yes, no, on or off (any case))`},
		{"bad port", []string{"SHUTDOWN_MANAGER_PORT=70000"}, []string{"shutdown-manager"}, `SHUTDOWN_MANAGER_PORT="70000": out of range (valid: a port from 0 to 65535`},
		{"bad admin url", nil, []string{"shutdown-manager", "--envoy-admin", "ftp://x"}, `--envoy-admin="ftp://x": unsupported scheme`},
		{"bad admin env", []string{"ENVOY_ADMIN_API=localhost:9901"}, []string{"drain"}, `ENVOY_ADMIN_API="localhost:9901": missing scheme`},
		{"bad address", nil, []string{"shutdown-manager", "--address", "pod-ip"}, `--address="pod-ip": not an IP address`},
		{"deadline too short", nil, []string{"shutdown-manager", "--deadline", "1s", "--delay", "2s"}, `--deadline="1s": too short (valid: 0, or at least`},
		{"bad count", nil, []string{"drain", "--count", "bytes"}, `--count="bytes": unknown value (valid: connections or requests)`},
		{"bad regexp", []string{"SHUTDOWN_MANAGER_INCLUDE=("}, []string{"drain"}, `SHUTDOWN_MANAGER_INCLUDE="(": cannot compile`},
		{"token with space", nil, []string{"shutdown-manager", "--token", "a b"}, `--token="(3 characters, not shown)": contains a space`},
		{"manager flag on drain", nil, []string{"drain", "--port", "1"}, "flag provided but not defined: -port"},
		{"argument", nil, []string{"shutdown-manager", "extra"}, `unexpected argument "extra"`},
		{"ready-file-only without file", nil, []string{"shutdown-manager", "--ready-file-only", "--ready-file", ""}, `--ready-file="": missing`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, mgrEnv(c.env...), c.args...)
			if got := p.ExitCode(); got != exitUsage {
				t.Errorf("exit code got %d, want %d", got, exitUsage)
			}
			out := p.Stderr.String()
			want := "envoy-lifecycle " + c.args[0] + ": "
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, want) || !strings.Contains(out, c.want) {
				t.Errorf("stderr got %q, want one line %q...%q", out, want, c.want)
			}
		})
	}
}

func TestManagerHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cmd  string
		mask cmdMask
	}{{"shutdown-manager", forManager}, {"drain", forDrain}} {
		cmd := exec.Command(bin(t), c.cmd, "--help")
		cmd.Env = append(baseEnv(), mgrEnv()...)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			t.Errorf("%s --help: %v", c.cmd, err)
		}
		var cfg mgrConfig
		for _, s := range cfg.settings() {
			if s.cmds&c.mask == 0 {
				continue
			}
			for _, name := range append(append([]string{}, s.flags...), s.env...) {
				flag := name
				if name == strings.ToLower(name) {
					flag = "--" + name
				}
				if !strings.Contains(out.String(), flag) {
					t.Errorf("%s --help does not list %s", c.cmd, flag)
				}
			}
		}
	}
}

// TestSettingsTableInReadme keeps shutdownmgr/README.md's table equal to
// the one the code writes (the same table drives --help). -update rewrites
// it.
func TestSettingsTableInReadme(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	writeMgrMarkdown(&want)
	checkReadmeTable(t, "shutdownmgr/README.md", "| Flag (aliases) |", want.String())
}
