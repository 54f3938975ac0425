package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
)

func startAgent(t *testing.T, e *envoyfake.Envoy) *envoyfake.PilotAgent {
	t.Helper()
	a, err := envoyfake.StartPilotAgent(e, envoyfake.AgentOptions{Logf: t.Logf})
	if err != nil {
		t.Fatalf("cannot start pilot-agent fake: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// endpoint is a generic quit endpoint that records when it was called.
type endpoint struct {
	*httptest.Server
	mu    sync.Mutex
	calls []time.Time
}

func startEndpoint(t *testing.T) *endpoint {
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		if r.Method == http.MethodPost {
			e.calls = append(e.calls, time.Now())
		}
		e.mu.Unlock()
		w.WriteHeader(http.StatusTeapot) // any status is fine: it is logged, not used
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) called() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.calls...)
}

// posts returns the recorded POSTs to path.
func posts(reqs []envoyfake.Request, path string) []envoyfake.Request {
	var out []envoyfake.Request
	for _, r := range reqs {
		if r.Method == http.MethodPost && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func waitQuit(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not stopped", what)
	}
}

func TestExitCodesPassThrough(t *testing.T) {
	t.Parallel()
	for _, withEnvoy := range []bool{false, true} {
		for _, code := range []int{0, 1, 2, 3, 126, 127, 255} {
			t.Run("envoy="+strconv.FormatBool(withEnvoy)+"/code="+strconv.Itoa(code), func(t *testing.T) {
				t.Parallel()
				var env []string
				if withEnvoy {
					e := envoytest.Start(t, envoyfake.Options{})
					env = append(env, "ENVOY_ADMIN_API="+e.AdminURL())
				}
				p := start(t, env, app("exit", strconv.Itoa(code))...)
				if got := p.ExitCode(); got != code {
					t.Errorf("exit code got %d, want %d", got, code)
				}
			})
		}
	}
}

func TestDeathBySignalGives128PlusN(t *testing.T) {
	t.Parallel()
	for _, pgid := range []bool{false, true} {
		for _, sig := range []string{"TERM", "INT", "HUP", "KILL"} {
			t.Run(sig+"/pgid="+strconv.FormatBool(pgid), func(t *testing.T) {
				t.Parallel()
				p := start(t, []string{"ENVOY_LIFECYCLE_PROCESS_GROUP=" + strconv.FormatBool(pgid)}, app("die-by", sig)...)
				want := 128 + int(signalNamed(sig))
				if got := p.ExitCode(); got != want {
					t.Errorf("exit code got %d, want %d", got, want)
				}
			})
		}
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		argv []string
		want int
	}{
		{"not found in PATH", []string{"no-such-command-el"}, 127},
		{"not found by path", []string{filepath.Join(dir, "missing")}, 127},
		{"not executable", []string{notExec}, 126},
		{"a directory", []string{dir}, 126},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{})
			p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, c.argv...)
			if got := p.ExitCode(); got != c.want {
				t.Errorf("exit code got %d, want %d", got, c.want)
			}
			// The proxy is stopped on this path too.
			waitQuit(t, e.Quit(), "envoy")
		})
	}
}

func TestSignalsForwardedExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, withEnvoy := range []bool{false, true} {
		t.Run("envoy="+strconv.FormatBool(withEnvoy), func(t *testing.T) {
			t.Parallel()
			env := []string{"ENVOY_LIFECYCLE_DRAIN=false"}
			if withEnvoy {
				e := envoytest.Start(t, envoyfake.Options{})
				env = append(env, "ENVOY_ADMIN_API="+e.AdminURL())
			}
			p := start(t, env, app("echo-signals")...)
			p.ExpectLine("ready")
			for _, name := range []string{"TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "WINCH",
				"ALRM", "CONT", "PWR", "XCPU", "XFSZ", "VTALRM", "IO"} {
				p.Signal(signalNamed(name))
				p.ExpectLine(name)
			}
			// Never forwarded: the next line must be the USR2 marker.
			for i := 0; i < 5; i++ {
				p.Signal(syscall.SIGURG)
				p.Signal(syscall.SIGCHLD)
				p.Signal(syscall.SIGPIPE) // Go reports its own EPIPE writes as SIGPIPE
			}
			p.Signal(syscall.SIGUSR2)
			p.ExpectLine("USR2")
			p.Stdin.Close()
			if got := p.ExitCode(); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
			for l, ok := p.Line(time.Second); ok; l, ok = p.Line(time.Second) {
				t.Errorf("unexpected line after exit: %q", l)
			}
		})
	}
}

// TestQuitOnEveryExitPath checks that each way the wrapper can end stops the
// proxy: generic endpoints first, then pilot-agent, which kills Envoy.
func TestQuitOnEveryExitPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fake envoyfake.Options
		env  []string
		argv []string
		sig  syscall.Signal // sent once envoy was polled
		want int
	}{
		{name: "app success", argv: app("exit", "0"), want: 0},
		{name: "app failure", argv: app("exit", "1"), want: 1},
		{name: "app killed by signal", argv: app("die-by", "TERM"), want: 143},
		{name: "app not found", argv: []string{"no-such-command-el"}, want: 127},
		{name: "readiness timeout", fake: envoyfake.Options{NeverLive: true}, env: []string{"QUIT_WITHOUT_ENVOY_TIMEOUT=200ms"}, argv: app("exit", "0"), want: exitUnavailable},
		{name: "signal during wait", fake: envoyfake.Options{NeverLive: true}, argv: app("exit", "0"), sig: syscall.SIGTERM, want: 143},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, c.fake)
			agent := startAgent(t, e)
			gen := startEndpoint(t)
			env := append([]string{
				"ENVOY_ADMIN_API=" + e.AdminURL(),
				"ISTIO_QUIT_API=" + agent.URL(),
				"GENERIC_QUIT_ENDPOINTS=" + gen.URL + "/quit",
			}, c.env...)
			p := start(t, env, c.argv...)
			if c.sig != 0 {
				envoytest.WaitRequests(t, e, "/server_info", 1)
				p.Signal(c.sig)
			}
			if got := p.ExitCode(); got != c.want {
				t.Errorf("exit code got %d, want %d", got, c.want)
			}
			waitQuit(t, agent.Quit(), "pilot-agent")
			waitQuit(t, e.Quit(), "envoy")
			g := gen.called()
			q := posts(agent.Requests(), "/quitquitquit")
			if len(g) != 1 || len(q) != 1 {
				t.Fatalf("quit calls got generic=%d istio=%d, want 1 each", len(g), len(q))
			}
			if !g[0].Before(q[0].At) {
				t.Errorf("generic endpoint called at %v, after istio quit at %v", g[0], q[0].At)
			}
			if n := len(posts(e.Requests(), "/quitquitquit")); n != 0 {
				t.Errorf("envoy /quitquitquit called %d times, want 0 (pilot-agent stops envoy)", n)
			}
		})
	}
}

func TestQuitEnvoyItselfWithoutIstio(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{PreInitializing: 3})
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, app("exit", "0")...)
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	waitQuit(t, e.Quit(), "envoy")
	// The app started only after LIVE: at least 4 polls came first.
	if n := len(e.Requests()); n < 5 {
		t.Errorf("admin requests got %d, want at least 4 polls and a quit", n)
	}
}

func TestNeverKillIstioOnFailure(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 3} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{})
			agent := startAgent(t, e)
			p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ISTIO_QUIT_API=" + agent.URL(), "NEVER_KILL_ISTIO_ON_FAILURE=true"}, app("exit", strconv.Itoa(code))...)
			if got := p.ExitCode(); got != code {
				t.Errorf("exit code got %d, want %d", got, code)
			}
			n := len(posts(agent.Requests(), "/quitquitquit"))
			if code == 0 && n != 1 || code != 0 && n != 0 {
				t.Errorf("istio quit calls got %d after exit %d", n, code)
			}
		})
	}
}

func TestBlackholedAdminCannotHang(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{BlackHole: true})
	begin := time.Now()
	p := start(t, []string{
		"ENVOY_ADMIN_API=" + e.AdminURL(),
		"QUIT_WITHOUT_ENVOY_TIMEOUT=300ms",
		"ENVOY_LIFECYCLE_REQUEST_TIMEOUT=100ms",
		"QUIT_REQUEST_TIMEOUT=100ms",
		"ENVOY_LIFECYCLE_QUIT_VERIFY=100ms",
	}, app("exit", "0")...)
	if got := p.ExitCode(); got != exitUnavailable {
		t.Errorf("exit code got %d, want %d", got, exitUnavailable)
	}
	// Not a timing assertion on the wrapper's speed: only that it ended on
	// its own, well inside exitCode's own 20s bound.
	t.Logf("ended after %v", time.Since(begin))
	if !strings.Contains(p.Stderr.String(), "QUIT_WITHOUT_ENVOY_TIMEOUT") {
		t.Errorf("stderr does not name the timeout:\n%s", p.Stderr.String())
	}
}

func TestEnvoyNeverLive(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     []string
		want    int
		started bool
	}{
		{"WAIT_FOR_ENVOY_TIMEOUT starts the app", []string{"WAIT_FOR_ENVOY_TIMEOUT=200ms"}, 0, true},
		{"QUIT_WITHOUT_ENVOY_TIMEOUT gives up", []string{"QUIT_WITHOUT_ENVOY_TIMEOUT=200ms"}, exitUnavailable, false},
		{"QUIT_WITHOUT_ENVOY_TIMEOUT wins", []string{"WAIT_FOR_ENVOY_TIMEOUT=100ms", "QUIT_WITHOUT_ENVOY_TIMEOUT=300ms"}, exitUnavailable, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{NeverLive: true})
			marker := filepath.Join(t.TempDir(), "started")
			p := start(t, append(c.env, "ENVOY_ADMIN_API="+e.AdminURL()), app("touch", marker)...)
			if got := p.ExitCode(); got != c.want {
				t.Errorf("exit code got %d, want %d", got, c.want)
			}
			_, err := os.Stat(marker)
			if started := err == nil; started != c.started {
				t.Errorf("app started got %v, want %v", started, c.started)
			}
			waitQuit(t, e.Quit(), "envoy")
		})
	}
}

func TestSignalDuringWaitDoesNotStartApp(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"TERM", "INT", "HUP"} {
		t.Run(sig, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{NeverLive: true})
			marker := filepath.Join(t.TempDir(), "started")
			p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, app("touch", marker)...)
			envoytest.WaitRequests(t, e, "/server_info", 1)
			p.Signal(signalNamed(sig))
			if got, want := p.ExitCode(), 128+int(signalNamed(sig)); got != want {
				t.Errorf("exit code got %d, want %d", got, want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("app was started")
			}
			waitQuit(t, e.Quit(), "envoy")
		})
	}
}

func TestUnixSocketAdmin(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	e := envoytest.Start(t, envoyfake.Options{AdminSocket: sock, LiveAfter: 100 * time.Millisecond})
	if !strings.HasPrefix(e.AdminURL(), "unix://") {
		t.Fatalf("admin url got %q, want unix://", e.AdminURL())
	}
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, app("exit", "0")...)
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	waitQuit(t, e.Quit(), "envoy")
}

// TestOrphansReaped runs the wrapper as PID 1 of a new PID namespace, and as
// a subreaper, with an app that leaves an orphan behind: the orphan must be
// reaped (the app checks) and the app's code must survive.
func TestOrphansReaped(t *testing.T) {
	t.Parallel()
	t.Run("subreaper", func(t *testing.T) {
		t.Parallel()
		p := start(t, []string{"ENVOY_LIFECYCLE_SUBREAPER=true"}, app("orphans", "7")...)
		if got := p.ExitCode(); got != 7 {
			t.Errorf("exit code got %d, want 7", got)
		}
	})
	t.Run("pid1", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("skipped: running as PID 1 needs root for unshare --pid --fork --mount-proc")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Skip("skipped: unshare (util-linux) is not installed")
		}
		argv := append([]string{"--pid", "--fork", "--mount-proc", bin(t)}, app("orphans", "7")...)
		p := startCmd(t, exec.Command(unshare, argv...), nil)
		if got := p.ExitCode(); got != 7 {
			t.Errorf("exit code got %d, want 7", got)
		}
		if !strings.Contains(p.Stderr.String(), "pid1=true") {
			t.Errorf("wrapper did not report running as PID 1:\n%s", p.Stderr.String())
		}
	})
}

func TestBadConfigStopsBeforeTheApp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env, name, value string
	}{
		// Our own variables are strict; the peers' are read by their rules
		// (TestPeerValuesStartTheApp).
		{"ENVOY_LIFECYCLE_REQUEST_TIMEOUT=abc", "ENVOY_LIFECYCLE_REQUEST_TIMEOUT", "abc"},
		{"ENVOY_LIFECYCLE_DRAIN_DELAY=-1s", "ENVOY_LIFECYCLE_DRAIN_DELAY", "-1s"},
		{"ENVOY_LIFECYCLE_DRAIN=yes please", "ENVOY_LIFECYCLE_DRAIN", "yes please"},
		{"ENVOY_KILL_API=localhost:1", "ENVOY_KILL_API", "localhost:1"},
		{"ENVOY_ADMIN_API=ftp://127.0.0.1:15000", "ENVOY_ADMIN_API", "ftp://127.0.0.1:15000"},
		{"ENVOY_ADMIN_API=http://[::1", "ENVOY_ADMIN_API", "http://[::1"},
		{"ISTIO_QUIT_API=127.0.0.1:15020", "ISTIO_QUIT_API", "127.0.0.1:15020"},
		{"ENVOY_LIFECYCLE_LOG_LEVEL=loud", "ENVOY_LIFECYCLE_LOG_LEVEL", "loud"},
		{"ENVOY_LIFECYCLE_LOG_FORMAT=xml", "ENVOY_LIFECYCLE_LOG_FORMAT", "xml"},
		{"ENVOY_LIFECYCLE_QUIT_RETRIES=0", "ENVOY_LIFECYCLE_QUIT_RETRIES", "0"},
	}
	for _, c := range cases {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "started")
			p := start(t, []string{c.env}, app("touch", marker)...)
			if got := p.ExitCode(); got != exitUsage {
				t.Errorf("exit code got %d, want %d", got, exitUsage)
			}
			out := strings.TrimSpace(p.Stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.Contains(out, c.name) || !strings.Contains(out, c.value) || !strings.Contains(out, "valid") {
				t.Errorf("stderr got %q, want one line naming %s, echoing %q and saying what is valid", out, c.name, c.value)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("app was started")
			}
		})
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(bin(t), "--help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ENVOY_ADMIN_API", "ENVOY_KILL_API", "NEVER_KILL_ENVOY", "ALWAYS_KILL_ENVOY", "START_WITHOUT_ENVOY",
		"ISTIO_QUIT_API", "GENERIC_QUIT_ENDPOINTS", "GENERIC_QUIT_ONLY", "NEVER_KILL_ISTIO", "NEVER_KILL_ISTIO_ON_FAILURE",
		"WAIT_FOR_ENVOY_TIMEOUT", "QUIT_WITHOUT_ENVOY_TIMEOUT", "QUIT_REQUEST_TIMEOUT", "ENVOY_PREFLIGHT_LOGGING",
		"SCUTTLE_LOGGING", "ISTIO_FALLBACK_PKILL", "USE_ISTIO_ENDPOINT", "ENVOY_LIFECYCLE_LOG_LEVEL"} {
		if !strings.Contains(string(out), v) {
			t.Errorf("--help does not list %s", v)
		}
	}
}

// TestNotLiveAnswersMeanNotYet: garbage from the admin API is "not yet",
// never a crash or a start.
func TestNotLiveAnswersMeanNotYet(t *testing.T) {
	t.Parallel()
	for _, g := range []string{envoyfake.GarbageHTML, envoyfake.GarbageTruncated, envoyfake.Garbage503, envoyfake.GarbageNonJSON} {
		t.Run(g, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{Garbage: g, LiveAfter: 150 * time.Millisecond})
			marker := filepath.Join(t.TempDir(), "started")
			p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, app("stamp", marker)...)
			if got := p.ExitCode(); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
			data, err := os.ReadFile(marker)
			if err != nil {
				t.Fatal("app was not started")
			}
			ns, _ := strconv.ParseInt(string(data), 10, 64)
			if started := time.Unix(0, ns); started.Before(e.LiveAt()) {
				t.Errorf("app started at %v, before envoy was LIVE at %v", started, e.LiveAt())
			}
		})
	}
}

// TestManyRunsKeepTheirExitCode: a wrapper that loses the race between a
// signal and its child's start gives the wrong code (envoy-preflight: 10 in
// 300). Every run here must be right.
func TestManyRunsKeepTheirExitCode(t *testing.T) {
	t.Parallel()
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("skipped: no true(1)")
	}
	falsePath, _ := exec.LookPath("false")
	runs := 300
	if testing.Short() {
		runs = 50
	}
	wrong := 0
	for i := 0; i < runs; i++ {
		for argv, want := range map[string]int{truePath: 0, falsePath: 1} {
			cmd := exec.Command(bin(t), argv)
			cmd.Env = baseEnv()
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != want {
				wrong++
				t.Logf("run %d of %s: exit %d, want %d (%v)", i, argv, code, want, err)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d runs exited with the wrong code", wrong, 2*runs)
	}
}

// TestWinchDuringWaitIsIgnored: a terminal resize or a SIGCONT while waiting
// for Envoy must not cost the pod its app.
func TestWinchDuringWaitIsIgnored(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{LiveAfter: 300 * time.Millisecond})
	marker := filepath.Join(t.TempDir(), "started")
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, app("touch", marker)...)
	envoytest.WaitRequests(t, e, "/server_info", 1)
	for _, sig := range []syscall.Signal{syscall.SIGWINCH, syscall.SIGCONT} {
		p.Signal(sig) // neither would have ended the app
	}
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("app was not started after SIGWINCH during the wait")
	}
}

// The end-to-end view of lifecycle.WriteMessage: the built binary writes
// the termination message where it was told.
func TestTerminationLogWritten(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	path := filepath.Join(t.TempDir(), "termination-log")
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_TERMINATION_LOG="+path), app("die-by", "TERM")...)
	if got := p.ExitCode(); got != 143 {
		t.Errorf("exit code got %d, want 143", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := string(data)
	for _, want := range []string{"exit 143", "killed by SIGTERM", "drain ", "(drained, 0 connections left)", "proxy stopped via envoy"} {
		if !strings.Contains(line, want) {
			t.Errorf("termination log %q lacks %q", line, want)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("termination log got %q, want one line", line)
	}
}
