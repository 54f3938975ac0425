package wrapper

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
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

// app is a started Child with its stdin and stdout wired to the test.
type app struct {
	*Child
	in  *os.File // write end of the app's stdin; close it to send EOF
	out *lines   // the app's stdout, line by line
}

// startApp starts o with pipes for stdin and stdout. Cleanup kills the app
// if it is still running and waits until it has been reaped.
func startApp(t *testing.T, o Options) *app {
	t.Helper()
	inR, inW := pipe(t)
	outR, outW := pipe(t)
	o.Stdin, o.Stdout = inR, outW
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	err = c.Start()
	// The app has its own copies; ours would hide EOF.
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Kill()
		select {
		case <-c.ExitCh():
		case <-time.After(timeout):
			t.Errorf("app %d was not reaped", c.Pid())
		}
	})
	return &app{Child: c, in: inW, out: newLines(outR)}
}

// wait returns the app's status.
func (a *app) wait(t *testing.T) Status {
	t.Helper()
	return waitStatus(t, a.Child)
}

func waitStatus(t *testing.T, c *Child) Status {
	t.Helper()
	select {
	case st, ok := <-c.ExitCh():
		if !ok {
			t.Fatal("ExitCh closed without a status")
		}
		return st
	case <-time.After(timeout):
		t.Fatalf("app %d did not exit within %v", c.Pid(), timeout)
	}
	return Status{}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	return r, w
}

// lines reads a pipe line by line in a goroutine, so reads can time out.
type lines struct{ ch chan string }

func newLines(r *os.File) *lines {
	l := &lines{ch: make(chan string, 64)}
	go func() {
		defer close(l.ch)
		s := bufio.NewScanner(r)
		for s.Scan() {
			l.ch <- s.Text()
		}
	}()
	return l
}

// next returns the next line; the timeout only catches a hung test.
func (l *lines) next(t *testing.T) string {
	t.Helper()
	select {
	case s, ok := <-l.ch:
		if !ok {
			t.Fatal("app closed stdout")
		}
		return s
	case <-time.After(timeout):
		t.Fatalf("no line from app within %v", timeout)
	}
	return ""
}

// rest returns the lines left until EOF.
func (l *lines) rest(t *testing.T) []string {
	t.Helper()
	var got []string
	for {
		select {
		case s, ok := <-l.ch:
			if !ok {
				return got
			}
			got = append(got, s)
		case <-time.After(timeout):
			t.Fatalf("no EOF from app within %v (got %q)", timeout, got)
		}
	}
}

func (l *lines) nextInt(t *testing.T) int {
	t.Helper()
	s := l.next(t)
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("want a number from app, got %q", s)
	}
	return n
}

func skipIfIgnored(t *testing.T, s syscall.Signal) {
	t.Helper()
	// A child inherits an ignored disposition (a shell's "cmd &" ignores
	// INT and QUIT), and then cannot die by it.
	if signal.Ignored(s) {
		t.Skipf("%v is ignored by the test process", s)
	}
}

func TestExitCodeMatrix(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			for _, code := range []int{0, 1, 2, 3, 126, 127, 255} {
				t.Run(fmt.Sprintf("exit %d", code), func(t *testing.T) {
					t.Parallel()
					o := appOptions("exit", strconv.Itoa(code))
					o.Setpgid = setpgid
					st := startApp(t, o).wait(t)
					if got := st.Code(); got != code {
						t.Errorf("ExitCode got %d, want %d (%v)", got, code, st)
					}
					if s, ok := killedBy(st); ok {
						t.Errorf("Signal got %v, want none", s)
					}
				})
			}
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGKILL} {
				want := 128 + int(sig)
				check := func(t *testing.T, st Status) {
					t.Helper()
					if got := st.Code(); got != want {
						t.Errorf("ExitCode got %d, want %d (%v)", got, want, st)
					}
					if s, ok := killedBy(st); !ok || s != sig {
						t.Errorf("Signal got %v, %v, want %v, true", s, ok, sig)
					}
				}
				t.Run("die-by "+testproc.SignalName(sig), func(t *testing.T) {
					t.Parallel()
					skipIfIgnored(t, sig)
					o := appOptions("die-by", testproc.SignalName(sig))
					o.Setpgid = setpgid
					check(t, startApp(t, o).wait(t))
				})
				t.Run("forward "+testproc.SignalName(sig), func(t *testing.T) {
					t.Parallel()
					skipIfIgnored(t, sig)
					o := appOptions("hang")
					o.Setpgid = setpgid
					a := startApp(t, o)
					if got := a.out.next(t); got != "ready" {
						t.Fatalf("got %q, want ready", got)
					}
					if err := a.Signal(sig); err != nil {
						t.Fatalf("Signal(%v): %v", sig, err)
					}
					check(t, a.wait(t))
				})
			}
		})
	}
}

func TestSignalForwarding(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			o := appOptions("echo-signals")
			o.Setpgid = setpgid
			a := startApp(t, o)
			if got := a.out.next(t); got != "ready" {
				t.Fatalf("got %q, want ready", got)
			}
			// One at a time, each acknowledged, so duplicates show in rest.
			for _, sig := range forwarded {
				if err := a.Signal(sig); err != nil {
					t.Fatalf("Signal(%v): %v", sig, err)
				}
				if got := a.out.next(t); got != testproc.SignalName(sig) {
					t.Fatalf("after %v got %q, want %q", sig, got, testproc.SignalName(sig))
				}
			}
			a.in.Close()
			if rest := a.out.rest(t); len(rest) > 0 {
				t.Errorf("extra output %q: a signal arrived more than once", rest)
			}
			if st := a.wait(t); st.Code() != 0 {
				t.Errorf("got %v, want exit status 0", st)
			}
		})
	}
}

func TestSignalAfterExit(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			o := appOptions("exit", "0")
			o.Setpgid = setpgid
			a := startApp(t, o)
			a.wait(t)
			if _, ok := <-a.ExitCh(); ok {
				t.Error("ExitCh delivered twice")
			}
			if err := a.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal after exit got %v, want %v", err, os.ErrProcessDone)
			}
			if err := a.Kill(); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Kill after exit got %v, want %v", err, os.ErrProcessDone)
			}
		})
	}
}

func TestSignalBeforeStart(t *testing.T) {
	t.Parallel()
	c, err := New(appOptions("exit", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Pid(); got != 0 {
		t.Errorf("Pid got %d, want 0", got)
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Signal got %v, want %v", err, ErrNotStarted)
	}
	if err := c.Kill(); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Kill got %v, want %v", err, ErrNotStarted)
	}
}

type fakeSignal struct{}

func (fakeSignal) String() string { return "fake" }
func (fakeSignal) Signal()        {}

func TestNotForwarded(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions("hang"))
	if got := a.out.next(t); got != "ready" {
		t.Fatalf("got %q, want ready", got)
	}
	for _, sig := range []syscall.Signal{syscall.SIGCHLD, syscall.SIGURG} {
		if err := a.Signal(sig); !errors.Is(err, ErrNotForwarded) {
			t.Errorf("Signal(%v) got %v, want %v", sig, err, ErrNotForwarded)
		}
	}
	if err := a.Signal(fakeSignal{}); err == nil {
		t.Error("Signal(fakeSignal) got nil, want an error")
	}
	if err := a.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if st := a.wait(t); st.Code() != 128+int(syscall.SIGKILL) {
		t.Errorf("got %v, want killed by SIGKILL", st)
	}
}

func TestSetpgid(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			o := appOptions("pgid")
			o.Setpgid = setpgid
			a := startApp(t, o)
			want := syscall.Getpgrp()
			if setpgid {
				want = a.Pid()
			}
			if got := a.out.nextInt(t); got != want {
				t.Errorf("app's pgid got %d, want %d", got, want)
			}
			if got, err := syscall.Getpgid(a.Pid()); err != nil || got != want {
				t.Errorf("Getpgid(app) got %d, %v, want %d", got, err, want)
			}
			a.in.Close()
			if st := a.wait(t); st.Code() != 0 {
				t.Errorf("got %v, want exit status 0", st)
			}
		})
	}
}

// findProcess returns a handle on pid. On Linux it holds a pidfd, so Kill
// cannot reach a recycled pid. Never Wait on it: the reaper owns waits.
func findProcess(t *testing.T, pid int) *os.Process {
	t.Helper()
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Kill()
		_ = p.Release()
	})
	return p
}

// dead reports whether pid has exited (gone, or a zombie someone else has
// to reap).
func dead(pid int) (bool, string) {
	state, _, err := testproc.ProcStat(pid)
	return err != nil || state == 'Z', fmt.Sprintf("process %d: state %q, %v", pid, state, err)
}

func TestKillReachesGroup(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			o := appOptions("spawn", "hang")
			o.Setpgid = setpgid
			a := startApp(t, o)
			gpid := a.out.nextInt(t)
			gp := findProcess(t, gpid)
			if got := a.out.next(t); got != "ready" {
				t.Fatalf("got %q, want ready", got)
			}
			if err := a.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if st := a.wait(t); st.Code() != 128+int(syscall.SIGKILL) {
				t.Errorf("got %v, want killed by SIGKILL", st)
			}
			if !setpgid {
				// Only the app was signalled.
				if ok, msg := dead(gpid); ok {
					t.Fatalf("grandchild was killed without Setpgid: %s", msg)
				}
				if err := gp.Kill(); err != nil {
					t.Fatal(err)
				}
			}
			if err := testproc.Poll(func() (bool, string) { return dead(gpid) }); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noExec := filepath.Join(dir, "no-exec")
	if err := os.WriteFile(noExec, []byte("#!/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badFormat := filepath.Join(dir, "bad-format")
	if err := os.WriteFile(badFormat, []byte("not a program\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		command string
		dir     string
		want    int
		wantErr error
	}{
		{"not in PATH", "wrapper-test-no-such-command", "", 127, exec.ErrNotFound},
		{"no such path", filepath.Join(dir, "missing"), "", 127, fs.ErrNotExist},
		{"no x bit", noExec, "", 126, fs.ErrPermission},
		{"directory", dir, "", 126, fs.ErrPermission},
		{"not an executable format", badFormat, "", 126, nil},
		{"no such working directory", os.Args[0], filepath.Join(dir, "missing"), 126, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := appOptions("exit", "0")
			o.Command, o.Dir = tc.command, tc.dir
			c, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Start()
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("Start got %v, want a *StartError", err)
			}
			var es interface{ ExitStatus() int }
			if !errors.As(err, &es) || es.ExitStatus() != tc.want {
				t.Errorf("ExitStatus got %d, want %d (%v)", se.ExitStatus(), tc.want, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Start got %v, want it to wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.command) {
				t.Errorf("error %q does not name the command", err)
			}
			if got := c.Pid(); got != 0 {
				t.Errorf("Pid got %d, want 0", got)
			}
			if err := c.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotStarted) {
				t.Errorf("Signal got %v, want %v", err, ErrNotStarted)
			}
		})
	}

	t.Run("missing command", func(t *testing.T) {
		t.Parallel()
		if _, err := New(Options{}); !errors.Is(err, ErrMissingCommand) {
			t.Errorf("New got %v, want %v", err, ErrMissingCommand)
		}
	})

	t.Run("started twice", func(t *testing.T) {
		t.Parallel()
		a := startApp(t, appOptions("exit", "0"))
		if err := a.Start(); !errors.Is(err, ErrAlreadyStarted) {
			t.Errorf("second Start got %v, want %v", err, ErrAlreadyStarted)
		}
		a.wait(t)
	})
}

// TestPATHLookup uses t.Setenv, so it cannot run in parallel.
func TestPATHLookup(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "wrapper-test-app")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wrapper-test-no-exec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)

	o := appOptions("exit", "3")
	o.Command = "wrapper-test-app"
	if st := startApp(t, o).wait(t); st.Code() != 3 {
		t.Errorf("got %v, want exit status 3", st)
	}

	// exec.LookPath skips files without an x bit, so this is not found.
	o.Command = "wrapper-test-no-exec"
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var se *StartError
	if err := c.Start(); !errors.As(err, &se) || se.ExitStatus() != 127 {
		t.Errorf("Start got %v, want a *StartError with ExitStatus 127", err)
	}
}

// TestInstantExit checks that a child that exits at once is never reaped as
// an orphan: its status always reaches its Child (envoy-preflight loses 10
// in 300).
func TestInstantExit(t *testing.T) {
	run := func(t *testing.T, i int) bool {
		want := 0
		if i%2 == 1 {
			want = 3
		}
		o := appOptions("exit", strconv.Itoa(want))
		c, err := New(o)
		if err != nil {
			t.Error(err)
			return false
		}
		if err := c.Start(); err != nil {
			t.Error(err)
			return false
		}
		select {
		case st := <-c.ExitCh():
			if st.Code() != want {
				t.Errorf("run %d: got %v, want exit status %d", i, st, want)
				return false
			}
		case <-time.After(timeout):
			t.Errorf("run %d: pid %d: no status within %v", i, c.Pid(), timeout)
			return false
		}
		return true
	}

	t.Run("sequential", func(t *testing.T) {
		for i := range 300 {
			if !run(t, i) {
				return
			}
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 25 {
					if !run(t, g*25+i) {
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestSubreaperOrphan makes the whole test process a subreaper, which is
// harmless since every wait goes through the reaper. It runs alone (not
// parallel), so zombie children of ours can only be its own.
func TestSubreaperOrphan(t *testing.T) {
	if err := SetSubreaper(); err != nil {
		testproc.SkipOrFailInCI(t, fmt.Sprintf("cannot become a subreaper: %v", err))
	}
	if sub, err := IsSubreaper(); err != nil || !sub {
		t.Fatalf("IsSubreaper got %v, %v, want true, nil", sub, err)
	}

	a := startApp(t, appOptions("spawn", "exit"))
	gpid := a.out.nextInt(t)
	gp := findProcess(t, gpid)
	if st := a.wait(t); st.Code() != 0 {
		t.Fatalf("got %v, want exit status 0", st)
	}
	me := os.Getpid()
	if err := testproc.Poll(func() (bool, string) {
		_, ppid, err := testproc.ProcStat(gpid)
		return err == nil && ppid == me, fmt.Sprintf("grandchild %d: ppid %d, want %d (%v)", gpid, ppid, me, err)
	}); err != nil {
		t.Fatal(err)
	}
	if err := gp.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := testproc.Poll(func() (bool, string) { return testproc.NoZombies(gpid, me) }); err != nil {
		t.Fatal(err)
	}
	if err := testproc.Poll(func() (bool, string) {
		return reapedOrphan(reaperLog.String(), gpid), "no \"reaped orphan\" log for " + strconv.Itoa(gpid)
	}); err != nil {
		t.Error(err)
	}
}

// TestPID1 runs the pid1 child command as PID 1 of a new pid namespace,
// where orphans reach the reaper without any subreaper call.
func TestPID1(t *testing.T) {
	t.Parallel()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		testproc.SkipOrFailInCI(t, "no unshare(1)")
	}
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	o := appOptions("pid1")
	o.Args = append([]string{"--pid", "--fork", "--kill-child", "--mount-proc", o.Command}, o.Args...)
	o.Command = unshare
	o.Stderr = stderr
	st := startApp(t, o).wait(t)
	if st.Code() == 0 {
		return
	}
	out, _ := os.ReadFile(stderr.Name())
	if strings.Contains(string(out), "unshare failed") {
		testproc.SkipOrFailInCI(t, fmt.Sprintf("cannot create a pid namespace: %s", out))
	}
	t.Errorf("got %v, want exit status 0; stderr:\n%s", st, out)
}

// TestExitBeforeRegistration lets each child exit and become a zombie
// between cmd.Start and its registration, the window in which a catch-all
// reaper steals the status. It runs alone, since the hook is global.
func TestExitBeforeRegistration(t *testing.T) {
	var stolen []int
	testHookStarted = func(pid int) {
		err := testproc.Poll(func() (bool, string) {
			state, _, err := testproc.ProcStat(pid)
			return err != nil || state == 'Z', fmt.Sprintf("child %d: state %q", pid, state)
		})
		if _, _, serr := testproc.ProcStat(pid); err != nil || serr != nil {
			// Gone already: someone reaped it before registration.
			stolen = append(stolen, pid)
		}
	}
	defer func() { testHookStarted = nil }()

	for i := range 20 {
		want := 3 * (i % 2)
		a := startApp(t, appOptions("exit", strconv.Itoa(want)))
		if st := a.wait(t); st.Code() != want {
			t.Fatalf("run %d: got %v, want exit status %d", i, st, want)
		}
	}
	if len(stolen) > 0 {
		t.Errorf("children reaped before registration: %v", stolen)
	}
}
