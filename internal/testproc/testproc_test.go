package testproc

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func init() {
	Register("exit", Exit)
	Register("hang", Hang)
	Register("die-by", DieBy)
	Register("echo-signals", EchoSignals(syscall.SIGUSR1, syscall.SIGHUP))
}

func TestMain(m *testing.M) { Main(m) }

// start runs child command name of this test binary.
func start(t *testing.T, name string, args ...string) *Proc {
	t.Helper()
	argv := Argv(name, args...)
	return Start(t, nil, argv[0], argv[1:]...)
}

func TestProcLinesSignalsAndExit(t *testing.T) {
	t.Parallel()
	p := start(t, "echo-signals")
	p.ExpectLine("ready")
	for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP} {
		p.Signal(s)
		p.ExpectLine(SignalName(s))
	}
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("ExitCode got %d, want 0", got)
	}
	if _, ok := p.Line(Timeout); ok {
		t.Error("a stdout line after the process exited")
	}
}

func TestProcExitStatus(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 3, 255} {
		if got := start(t, "exit", strconv.Itoa(code)).ExitCode(); got != code {
			t.Errorf("exit %d: ExitCode got %d", code, got)
		}
	}
	st := start(t, "die-by", "TERM").Wait()
	if !st.Signaled() || st.Signal() != syscall.SIGTERM {
		t.Errorf("die-by TERM: status got %v, want killed by SIGTERM", st)
	}
}

func TestProcCleanupKillsTheGroup(t *testing.T) {
	var pid int
	t.Run("hang", func(t *testing.T) {
		p := start(t, "hang")
		p.ExpectLine("ready")
		pid = p.Cmd.Process.Pid
	})
	// Cleanup killed and waited for it, so even its zombie is gone.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after cleanup: got %v, want ESRCH", pid, err)
	}
}

func TestArgvPanicsOnUnknownCommand(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Argv of an unregistered command did not panic")
		}
	}()
	Argv("no-such-command")
}

func TestEnvReplacesMarkerAndGORACE(t *testing.T) {
	t.Setenv(Marker, "0")
	t.Setenv("GORACE", "halt_on_error=1")
	env := Env("X=1")
	var markers, goraces []string
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, Marker+"="):
			markers = append(markers, kv)
		case strings.HasPrefix(kv, "GORACE="):
			goraces = append(goraces, kv)
		}
	}
	if !slices.Equal(markers, []string{Marker + "=1"}) {
		t.Errorf("marker entries got %q, want one %s=1", markers, Marker)
	}
	if !slices.Equal(goraces, []string{"GORACE=halt_on_error=1 atexit_sleep_ms=0"}) {
		t.Errorf("GORACE entries got %q", goraces)
	}
	if env[len(env)-1] != "X=1" {
		t.Errorf("extra env got %q last, want X=1", env[len(env)-1])
	}
}

func TestCheckNamesUnusedCommands(t *testing.T) {
	r := &registry{cmds: map[string]func([]string) int{"a": Exit, "b": Exit, "c": Exit}, used: map[string]bool{"b": true}}
	var out bytes.Buffer
	if got := r.check(&out); got != 1 || !strings.Contains(out.String(), `["a" "c"]`) {
		t.Errorf("check got %d and %q, want 1 naming a and c", got, out.String())
	}
	r.used["a"], r.used["c"] = true, true
	out.Reset()
	if got := r.check(&out); got != 0 || out.Len() != 0 {
		t.Errorf("check with all used got %d and %q, want 0 and nothing", got, out.String())
	}
}

// TestUnusedCheckHonoursFilters runs a package that registers a command no
// test uses: a full run fails, and -run, -skip and -short runs pass.
func TestUnusedCheckHonoursFilters(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "selftest.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./testdata/selftest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the self test: %v\n%s", err, out)
	}
	for _, c := range []struct {
		flags []string
		code  int
	}{
		{nil, 1},
		{[]string{"-test.skip=TestNothing"}, 0},
		{[]string{"-test.run=TestRunsUsed"}, 0},
		{[]string{"-test.short"}, 0},
		{[]string{"-test.list=."}, 0},
	} {
		cmd := exec.Command(bin, c.flags...)
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, Marker+"=") })
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		unused := strings.Contains(string(out), `never used by a test: ["unused"]`)
		if code != c.code || unused != (c.code == 1) {
			t.Errorf("selftest %q: exit %d (unused reported %v), want exit %d\n%s", c.flags, code, unused, c.code, out)
		}
	}
}

func TestLoggerDropsLinesAfterTheTest(t *testing.T) {
	var log interface{ Info(string, ...any) }
	t.Run("inner", func(t *testing.T) {
		l := Logger(t)
		l.Info("during the test", "k", 1)
		log = l
	})
	// testing panics on a Log from a finished test; the logger must not.
	log.Info("after the test")
}

func TestBufferIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	var b Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			b.Write([]byte("x"))
		}
	}()
	for range 100 {
		_ = b.String()
	}
	WaitClosed(t, "the writer", done)
	if got := b.String(); got != strings.Repeat("x", 100) {
		t.Errorf("Buffer got %q, want 100 x", got)
	}
}

func TestHeldUpstreamHoldsUntilReleased(t *testing.T) {
	t.Parallel()
	h := HeldUpstream(t)
	done := h.Hold(t, h.URL+"/work")
	select {
	case err := <-done:
		t.Fatalf("request ended while held: %v", err)
	default:
	}
	h.Release()
	if err := Recv(t, "the released request", done); err != nil {
		t.Errorf("released request: %v", err)
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(func() (bool, string) { n++; return n == 3, "n < 3" }); err != nil || n != 3 {
		t.Errorf("Poll got %v after %d calls, want nil after 3", err, n)
	}
}

func TestProcStatAndNoZombies(t *testing.T) {
	t.Parallel()
	p := start(t, "hang")
	p.ExpectLine("ready")
	pid := p.Cmd.Process.Pid
	state, ppid, err := ProcStat(pid)
	if err != nil || ppid != os.Getpid() || state == 'Z' {
		t.Fatalf("ProcStat(%d) got %q %d %v, want a live child of %d", pid, state, ppid, err, os.Getpid())
	}
	if ok, _ := NoZombies(pid, os.Getpid()); ok {
		t.Error("NoZombies true while the child runs")
	}
	p.Signal(syscall.SIGKILL)
	p.Wait()
	if ok, msg := NoZombies(pid, os.Getpid()); !ok {
		t.Errorf("NoZombies false after the child was reaped: %s", msg)
	}
}

func TestFreePorts(t *testing.T) {
	t.Parallel()
	ports := FreePorts(t, 3)
	seen := map[int]bool{}
	for _, p := range ports {
		if p == 0 || seen[p] {
			t.Errorf("FreePorts got %v, want 3 distinct ports", ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d not free: %v", p, err)
			continue
		}
		ln.Close()
	}
}
