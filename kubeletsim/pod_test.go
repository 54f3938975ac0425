package kubeletsim

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

// The test binary plays the containers (testproc): childCommands are what
// it can play.

// childLife bounds every child, so a lost one cannot outlive the tests.
const childLife = time.Minute

var childCommands = map[string]func(args []string) int{
	// serve: print "ready"; on SIGTERM print "TERM" and exit 0; on SIGUSR1
	// print "USR1" and exit 0.
	"serve": func([]string) int {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGUSR1)
		fmt.Println("ready")
		select {
		case s := <-ch:
			if s == syscall.SIGTERM {
				fmt.Println("TERM")
			} else {
				fmt.Println("USR1")
			}
			return 0
		case <-time.After(childLife):
			return 3
		}
	},
	// linger: print "ready"; on SIGTERM print "TERM" and keep running until
	// SIGUSR1, then exit 0.
	"linger": func([]string) int {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGUSR1)
		fmt.Println("ready")
		deadline := time.After(childLife)
		for {
			select {
			case s := <-ch:
				if s == syscall.SIGUSR1 {
					return 0
				}
				fmt.Println("TERM")
			case <-deadline:
				return 3
			}
		}
	},
	// ignore-term: ignore SIGTERM, print "ready" and block.
	"ignore-term": func([]string) int {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(childLife)
		return 3
	},
	// block: print "hook running" and block (an exec hook that never ends).
	"block": func([]string) int {
		fmt.Println("hook running")
		time.Sleep(childLife)
		return 3
	},
	"exit": testproc.Exit,
	// fail-once FILE: exit 1 and create FILE if it does not exist, else exit 0.
	"fail-once": func(args []string) int {
		if _, err := os.Stat(args[0]); err == nil {
			return 0
		}
		os.WriteFile(args[0], nil, 0o644)
		return 1
	},
}

func TestMain(m *testing.M) {
	testproc.RegisterAll(childCommands)
	testproc.Main(m)
}

// child is a container that runs child command name.
func child(name string, args ...string) Container {
	return Container{Name: name, Argv: testproc.Argv(name, args...), Env: testproc.Env()}
}

func named(c Container, name string) Container { c.Name = name; return c }

func withHook(c Container, h *Handler) Container { c.PreStop = h; return c }

// hookCmd is the argv of an exec hook that runs child command name.
func hookCmd(name string) []string {
	return testproc.Argv(name)
}

// index is the position of the first event matching pred, or fails.
func index(t *testing.T, p *Pod, what string, pred func(Event) bool) int {
	t.Helper()
	_, i, ok := p.First(pred)
	if !ok {
		t.Fatalf("no %s\ntimeline:\n%s", what, p.Timeline())
	}
	return i
}

func before(t *testing.T, p *Pod, a string, pa func(Event) bool, b string, pb func(Event) bool) {
	t.Helper()
	if ia, ib := index(t, p, a, pa), index(t, p, b, pb); ia >= ib {
		t.Errorf("%s (event %d) did not come before %s (event %d)\ntimeline:\n%s", a, ia, b, ib, p.Timeline())
	}
}

// terminate runs Terminate in the background; the channel closes when it
// returns.
func terminate(p *Pod, grace time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() { p.Terminate(grace); close(done) }()
	return done
}

func noKills(t *testing.T, p *Pod) {
	t.Helper()
	if e, _, ok := p.First(Is(EventKill, "")); ok {
		t.Errorf("%s was SIGKILLed\ntimeline:\n%s", e.Container, p.Timeline())
	}
}

func port(t *testing.T, s *httptest.Server) int {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(u.Port())
	return n
}

// TestHooksRunConcurrentlyThenTerm: the hooks start together; a container
// without a hook gets SIGTERM at once, one with a hook only after it.
func TestHooksRunConcurrentlyThenTerm(t *testing.T) {
	t.Parallel()
	release, slowEntered := make(chan struct{}), make(chan struct{})
	var enterOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			enterOnce.Do(func() { close(slowEntered) })
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/fast":
			// Answered only once the slow hook is in flight: the hooks
			// must run at once for the fast one to end.
			select {
			case <-slowEntered:
			case <-r.Context().Done():
				return
			}
			if r.Header.Get("X-Token") != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	defer close(release)
	pt := port(t, srv)
	p := MustStart(t, Spec{Containers: []Container{
		withHook(named(child("serve"), "slow"), &Handler{HTTPGet: &HTTPGet{Port: pt, Path: "/slow"}}),
		withHook(named(child("serve"), "fast"), &Handler{HTTPGet: &HTTPGet{Port: pt, Path: "/fast", Headers: []Header{{"X-Token", "s3cret"}}}}),
		named(child("serve"), "nohook"),
	}})
	for _, n := range []string{"slow", "fast", "nohook"} {
		p.MustWait(t, n+" ready", Output(n, "ready"))
	}
	done := terminate(p, 20*time.Second)

	// While the slow hook is held: the fast one finished, both containers
	// without a pending hook got SIGTERM, the slow one did not.
	end := p.MustWait(t, "fast hook end", Is(EventHookEnd, "fast"))
	if end.Code != http.StatusNoContent || end.Failed {
		t.Errorf("fast hook got code %d failed=%v, want 204 (headers sent)", end.Code, end.Failed)
	}
	p.MustWait(t, "fast exited", Is(EventExited, "fast"))
	p.MustWait(t, "nohook exited", Is(EventExited, "nohook"))
	if _, _, ok := p.First(Is(EventTerm, "slow")); ok {
		t.Fatalf("slow got SIGTERM while its hook ran\n%s", p.Timeline())
	}
	release <- struct{}{}
	testproc.WaitClosed(t, "Terminate", done)

	before(t, p, "slow hook start", Is(EventHookStart, "slow"), "fast hook end", Is(EventHookEnd, "fast"))
	before(t, p, "nohook SIGTERM", Is(EventTerm, "nohook"), "slow hook end", Is(EventHookEnd, "slow"))
	before(t, p, "slow hook end", Is(EventHookEnd, "slow"), "slow SIGTERM", Is(EventTerm, "slow"))
	before(t, p, "slow SIGTERM", Is(EventTerm, "slow"), "slow TERM line", Output("slow", "TERM"))
	noKills(t, p)
	for _, n := range []string{"slow", "fast", "nohook"} {
		if c := p.MustExitCode(t, n); c != 0 {
			t.Errorf("%s exit code got %d, want 0", n, c)
		}
	}
	if ph := p.Phase(); ph != PhaseSucceeded {
		t.Errorf("phase got %s, want %s", ph, PhaseSucceeded)
	}
}

// TestKillAtGracePeriod: a container that ignores SIGTERM gets SIGKILL at
// the grace period, not before.
func TestKillAtGracePeriod(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	p := MustStart(t, Spec{Containers: []Container{child("ignore-term")}})
	p.MustWait(t, "ready", Output("ignore-term", "ready"))
	p.Terminate(grace)
	term := p.MustWait(t, "terminate", Is(EventTerminate, ""))
	kill := p.MustWait(t, "SIGKILL", Is(EventKill, "ignore-term"))
	if d := kill.At.Sub(term.At); d < grace {
		t.Errorf("SIGKILL came %v after the termination began, before the grace period %v", d, grace)
	}
	before(t, p, "SIGTERM", Is(EventTerm, "ignore-term"), "SIGKILL", Is(EventKill, "ignore-term"))
	if c := p.MustExitCode(t, "ignore-term"); c != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code got %d, want 137", c)
	}
	if st, _ := p.Status("ignore-term"); !st.Killed {
		t.Error("status does not say killed")
	}
	if ph := p.Phase(); ph != PhaseFailed {
		t.Errorf("phase got %s, want %s", ph, PhaseFailed)
	}
}

// TestHookPastGracePeriod: a hook that outlasts the grace period leaves no
// time for SIGTERM: the container is killed.
func TestHookPastGracePeriod(t *testing.T) {
	t.Parallel()
	p := MustStart(t, Spec{Containers: []Container{
		withHook(child("serve"), &Handler{Exec: hookCmd("block")}),
	}})
	p.MustWait(t, "ready", Output("serve", "ready"))
	p.Terminate(300 * time.Millisecond)
	end := p.MustWait(t, "hook end", Is(EventHookEnd, "serve"))
	if !end.Failed {
		t.Errorf("hook end got %+v, want failed", end)
	}
	if _, _, ok := p.First(Is(EventTerm, "serve")); ok {
		t.Errorf("SIGTERM sent after the grace period\n%s", p.Timeline())
	}
	p.MustWait(t, "SIGKILL", Is(EventKill, "serve"))
	if c := p.MustExitCode(t, "serve"); c != 137 {
		t.Errorf("exit code got %d, want 137", c)
	}
}

// TestExecHookDiesWithItsContainer: an exec hook runs inside its container
// and ends when the container's process exits.
func TestExecHookDiesWithItsContainer(t *testing.T) {
	t.Parallel()
	p := MustStart(t, Spec{Containers: []Container{
		withHook(child("serve"), &Handler{Exec: hookCmd("block")}),
	}})
	p.MustWait(t, "ready", Output("serve", "ready"))
	done := terminate(p, 20*time.Second)
	p.MustWait(t, "hook output", func(e Event) bool {
		return e.Kind == EventOutput && e.Stream == StreamPreStop && e.Detail == "hook running"
	})
	st, _ := p.Status("serve")
	if err := syscall.Kill(st.Pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testproc.WaitClosed(t, "Terminate", done)
	end := p.MustWait(t, "hook end", Is(EventHookEnd, "serve"))
	if !end.Failed || end.Code != 137 {
		t.Errorf("hook end got code %d failed=%v, want 137 and failed", end.Code, end.Failed)
	}
	if _, _, ok := p.First(Is(EventTerm, "serve")); ok {
		t.Errorf("SIGTERM sent to an exited container\n%s", p.Timeline())
	}
	noKills(t, p)
}

// TestSleepHookOutlivesItsContainer: kubelet sleeps the sleep action out,
// even after the container exited; the pod is done only then.
func TestSleepHookOutlivesItsContainer(t *testing.T) {
	t.Parallel()
	const sleep = 300 * time.Millisecond
	p := MustStart(t, Spec{Containers: []Container{withHook(child("serve"), &Handler{Sleep: sleep})}})
	p.MustWait(t, "ready", Output("serve", "ready"))
	done := terminate(p, 20*time.Second)
	start := p.MustWait(t, "hook start", Is(EventHookStart, "serve"))
	st, _ := p.Status("serve")
	if err := syscall.Kill(st.Pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testproc.WaitClosed(t, "Terminate", done)
	before(t, p, "exit", Is(EventExited, "serve"), "hook end", Is(EventHookEnd, "serve"))
	end := p.MustWait(t, "hook end", Is(EventHookEnd, "serve"))
	if d := end.At.Sub(start.At); d < sleep || end.Failed {
		t.Errorf("sleep hook ended after %v (failed=%v), want %v", d, end.Failed, sleep)
	}
	if _, _, ok := p.First(Is(EventTerm, "serve")); ok {
		t.Errorf("SIGTERM sent to an exited container\n%s", p.Timeline())
	}
	before(t, p, "hook end", Is(EventHookEnd, "serve"), "pod done", Is(EventPodDone, ""))
}

// TestNativeSidecars: sidecars start first, each after its startup probe;
// on deletion their hooks run at once with the app's, but their SIGTERM
// waits until the app has exited, and they stop in reverse order.
func TestNativeSidecars(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	pt := port(t, srv)
	probe := &HTTPGet{Port: pt, Path: "/ready"}
	hook := &Handler{HTTPGet: &HTTPGet{Port: pt, Path: "/hook"}}
	s1 := withHook(named(child("serve"), "sidecar-1"), hook)
	s1.StartupProbe = probe
	s2 := withHook(named(child("serve"), "sidecar-2"), hook)
	s2.StartupProbe = probe
	p := MustStart(t, Spec{Sidecars: []Container{s1, s2}, Containers: []Container{named(child("linger"), "app")}})
	before(t, p, "sidecar-1 probed", Is(EventProbed, "sidecar-1"), "sidecar-2 started", Is(EventStarted, "sidecar-2"))
	before(t, p, "sidecar-2 probed", Is(EventProbed, "sidecar-2"), "app started", Is(EventStarted, "app"))
	p.MustWait(t, "app ready", Output("app", "ready"))

	done := terminate(p, 20*time.Second)
	p.MustWait(t, "app TERM", Output("app", "TERM"))
	p.MustWait(t, "sidecar-1 hook end", Is(EventHookEnd, "sidecar-1"))
	p.MustWait(t, "sidecar-2 hook end", Is(EventHookEnd, "sidecar-2"))
	if e, _, ok := p.First(Is(EventTerm, "")); ok && e.Container != "app" {
		t.Fatalf("%s got SIGTERM while the app runs\n%s", e.Container, p.Timeline())
	}
	st, _ := p.Status("app")
	if err := syscall.Kill(st.Pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testproc.WaitClosed(t, "Terminate", done)
	before(t, p, "app exit", Is(EventExited, "app"), "sidecar-2 SIGTERM", Is(EventTerm, "sidecar-2"))
	before(t, p, "sidecar-2 exit", Is(EventExited, "sidecar-2"), "sidecar-1 SIGTERM", Is(EventTerm, "sidecar-1"))
	noKills(t, p)
}

// TestJobEndStopsNativeSidecars: once the regular containers completed,
// the sidecars are stopped and the pod's phase follows the app's code.
func TestJobEndStopsNativeSidecars(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code  string
		phase Phase
	}{{"0", PhaseSucceeded}, {"3", PhaseFailed}} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			p := MustStart(t, Spec{
				Sidecars:   []Container{named(child("serve"), "proxy")},
				Containers: []Container{named(child("exit", tc.code), "job")},
			})
			testproc.WaitClosed(t, "pod done", p.Done())
			before(t, p, "job exit", Is(EventExited, "job"), "termination", Is(EventTerminate, ""))
			before(t, p, "termination", Is(EventTerminate, ""), "proxy SIGTERM", Is(EventTerm, "proxy"))
			if ph := p.Phase(); ph != tc.phase {
				t.Errorf("phase got %s, want %s", ph, tc.phase)
			}
			if st, _ := p.Status("proxy"); st.Restarts != 0 {
				t.Errorf("proxy restarted %d times", st.Restarts)
			}
		})
	}
}

// TestClassicSidecarHoldsTheJob: a sidecar that is a regular container
// keeps the pod running after the job's container completed.
func TestClassicSidecarHoldsTheJob(t *testing.T) {
	t.Parallel()
	p := MustStart(t, Spec{Containers: []Container{named(child("exit", "0"), "job"), named(child("serve"), "proxy")}})
	p.MustWait(t, "job exit", Is(EventExited, "job"))
	p.MustWait(t, "proxy ready", Output("proxy", "ready"))
	if st, _ := p.Status("proxy"); !st.Running {
		t.Error("proxy is not running")
	}
	select {
	case <-p.Done():
		t.Errorf("pod done while the proxy runs\n%s", p.Timeline())
	default:
	}
	if ph := p.Phase(); ph != PhaseRunning {
		t.Errorf("phase got %s, want Running", ph)
	}
}

// TestRestartPolicy: OnFailure restarts a failed container in the same
// pod; Never does not.
func TestRestartPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy   RestartPolicy
		restarts int
		phase    Phase
	}{{RestartOnFailure, 1, PhaseSucceeded}, {RestartNever, 0, PhaseFailed}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			t.Parallel()
			p := MustStart(t, Spec{RestartPolicy: tc.policy,
				Containers: []Container{named(child("fail-once", filepath.Join(t.TempDir(), "failed")), "job")}})
			testproc.WaitClosed(t, "pod done", p.Done())
			st, _ := p.Status("job")
			if st.Restarts != tc.restarts {
				t.Errorf("restarts got %d, want %d", st.Restarts, tc.restarts)
			}
			if ph := p.Phase(); ph != tc.phase {
				t.Errorf("phase got %s, want %s", ph, tc.phase)
			}
		})
	}
}

func TestStartRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	ok := Container{Name: "a", Argv: []string{"x"}}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"no containers", Spec{}},
		{"no name", Spec{Containers: []Container{{Argv: []string{"x"}}}}},
		{"same name", Spec{Containers: []Container{ok, ok}}},
		{"no argv", Spec{Containers: []Container{{Name: "a"}}}},
		{"exec and http", Spec{Containers: []Container{withHook(ok, &Handler{Exec: []string{"x"}, HTTPGet: &HTTPGet{Port: 1}})}}},
		{"empty exec", Spec{Containers: []Container{withHook(ok, &Handler{Exec: []string{}})}}},
		{"no port", Spec{Containers: []Container{withHook(ok, &Handler{HTTPGet: &HTTPGet{}})}}},
		{"negative sleep", Spec{Containers: []Container{withHook(ok, &Handler{Sleep: -time.Second})}}},
		{"bad policy", Spec{RestartPolicy: "Sometimes", Containers: []Container{ok}}},
		{"negative grace", Spec{GracePeriod: -1, Containers: []Container{ok}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Start(tc.spec); !errors.Is(err, ErrBadSpec) {
				t.Errorf("Start got %v, want ErrBadSpec", err)
			}
		})
	}
}

func TestStartupProbeTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	s := named(child("serve"), "proxy")
	s.StartupProbe = &HTTPGet{Port: port(t, srv), Path: "/ready"}
	_, err := Start(Spec{StartTimeout: 100 * time.Millisecond, Sidecars: []Container{s}, Containers: []Container{named(child("serve"), "app")}})
	if err == nil {
		t.Fatal("Start succeeded with a failing startup probe")
	}
}

// TestInitContainers: init containers run to completion, in order, before
// anything else starts; one that fails fails the start.
func TestInitContainers(t *testing.T) {
	t.Parallel()
	p := MustStart(t, Spec{
		InitContainers: []Container{named(child("exit", "0"), "init-1"), named(child("exit", "0"), "init-2")},
		Containers:     []Container{named(child("exit", "0"), "job")},
	})
	testproc.WaitClosed(t, "pod done", p.Done())
	before(t, p, "init-1 exit", Is(EventExited, "init-1"), "init-2 start", Is(EventStarted, "init-2"))
	before(t, p, "init-2 exit", Is(EventExited, "init-2"), "job start", Is(EventStarted, "job"))
	if st, ok := p.Status("init-2"); !ok || !st.Exited || st.ExitCode != 0 {
		t.Errorf("init-2 status got %+v (found %v)", st, ok)
	}
	if ph := p.Phase(); ph != PhaseSucceeded {
		t.Errorf("phase got %s, want Succeeded", ph)
	}

	_, err := Start(Spec{
		InitContainers: []Container{named(child("exit", "3"), "init")},
		Containers:     []Container{named(child("serve"), "app")},
	})
	if err == nil || !strings.Contains(err.Error(), `init container "init" exited 3`) {
		t.Errorf("Start with a failing init container got %v", err)
	}
}
