//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/wrapper"
)

// The built binary against issue 11's reproductions: every signal 1..64,
// inherited ignores (trap "" INT, nohup), PROCESS_GROUP under a terminal and
// Ctrl-C reaching the app once.

func init() {
	// echo-all: print "ready <ignored>", then "<n>" for each signal and
	// "read <line>" for each line of stdin; exit 0 at EOF.
	testproc.Register("echo-all", testproc.EchoAll(""))
	testproc.Register("ignore-exec", testproc.IgnoreExec)
}

// expectReady reads echo-all's ready line and returns its ignored list.
func expectReady(t *testing.T, next func() (string, bool)) string {
	t.Helper()
	l, ok := next()
	ign, found := strings.CutPrefix(l, "ready ")
	if !ok || !found {
		t.Fatalf("got %q (ok=%v), want echo-all's ready line", l, ok)
	}
	return ign
}

// TestEverySignalWhileTheAppRuns sends each signal 1..64 to the wrapper with
// kill(2) while the app runs, and checks the documented action
// (wrapper.SignalTable): forwarded ones reach the app once; no other reaches
// it or ends the wrapper (issue 11: SIGSTKFLT, SIGSYS, SIGTRAP and the
// real-time signals used to kill it and orphan the app).
func TestEverySignalWhileTheAppRuns(t *testing.T) {
	t.Parallel()
	p := start(t, []string{"ENVOY_LIFECYCLE_STOP_TIMEOUT=0"}, app("echo-all")...)
	if ign := expectReady(t, func() (string, bool) { return p.Line(testproc.Timeout) }); ign != "-" {
		t.Skipf("the test runs with signals ignored (%s)", ign)
	}
	pid := p.Cmd.Process.Pid
	for _, info := range wrapper.SignalTable() {
		s := info.Signal
		what := fmt.Sprintf("%s (%v)", info.Name, info.Action)
		switch info.Action {
		case wrapper.Forward:
			p.Signal(s)
			p.ExpectLine(strconv.Itoa(int(s)))
		case wrapper.Own, wrapper.Dropped, wrapper.Reserved:
			p.Signal(s)
			p.Signal(syscall.SIGUSR1) // had s reached the app, its line comes first
			p.ExpectLine("10")
		case wrapper.JobControl, wrapper.Uncatchable:
			if s == syscall.SIGKILL {
				continue
			}
			p.Signal(s)
			if err := testproc.Poll(func() (bool, string) {
				st, _, err := testproc.ProcStat(pid)
				return err == nil && st == 'T', fmt.Sprintf("wrapper state %q, want T", st)
			}); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			p.Signal(syscall.SIGCONT)
			p.ExpectLine("18")
		default:
			t.Fatalf("%s: no check for this action", what)
		}
	}
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	for l, ok := p.Line(time.Second); ok; l, ok = p.Line(time.Second) {
		t.Errorf("unexpected line after exit: %q", l)
	}
}

// TestSignalsDuringTheWait: during the readiness wait a signal whose
// default action would end the app ends the wait with 128+n; the others
// (WINCH, CONT, the runtime's own, PIPE, the reserved ones) leave the wrapper
// waiting.
func TestSignalsDuringTheWait(t *testing.T) {
	t.Parallel()
	var harmless []syscall.Signal
	for _, info := range wrapper.SignalTable() {
		switch {
		case info.Action == wrapper.Forward && !info.Default.Ends(),
			info.Action == wrapper.Own, info.Action == wrapper.Dropped, info.Action == wrapper.Reserved:
			harmless = append(harmless, info.Signal)
		}
	}
	for _, final := range []syscall.Signal{syscall.SIGTERM, syscall.SIGSTKFLT, syscall.SIGSYS, 35, 64} {
		t.Run(wrapper.Lookup(final).Name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{NeverLive: true})
			p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL()}, app("exit", "0")...)
			envoytest.WaitRequests(t, e, "/server_info", 1)
			for _, s := range harmless {
				p.Signal(s)
			}
			p.Signal(final)
			if got, want := p.ExitCode(), 128+int(final); got != want {
				t.Errorf("exit code got %d, want %d (a harmless signal ended the wait?)\n%s", got, want, p.Stderr.String())
			}
			waitQuit(t, e.Quit(), "envoy")
		})
	}
}

// TestInheritedIgnoresKept: `trap "" INT; exec envoy-lifecycle …`, nohup
// and a script's `cmd &` leave signals ignored; the app inherits them
// ignored and the wrapper does not forward them.
func TestInheritedIgnoresKept(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		argv    func(t *testing.T) []string
		want    string // the app's ignored list
		ignored []syscall.Signal
	}{
		{"trap INT", func(t *testing.T) []string {
			return append(app("ignore-exec", "2", bin(t)), app("echo-all")...)
		}, "2", []syscall.Signal{syscall.SIGINT}},
		// A script's `cmd &` ignores INT and QUIT. QUIT's ignore is lost: the
		// Go runtime takes QUIT over before the wrapper's code runs (README).
		{"cmd &", func(t *testing.T) []string {
			return append(app("ignore-exec", "2,3", bin(t)), app("echo-all")...)
		}, "2", []syscall.Signal{syscall.SIGINT}},
		{"nohup", func(t *testing.T) []string {
			nohup, err := exec.LookPath("nohup")
			if err != nil {
				testproc.SkipOrFailInCI(t, "no nohup(1)")
			}
			return append([]string{nohup, bin(t)}, app("echo-all")...)
		}, "1", []syscall.Signal{syscall.SIGHUP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			argv := tc.argv(t)
			p := startCmd(t, exec.Command(argv[0], argv[1:]...), nil)
			want := tc.want
			if testproc.InheritedReserved(t)[32] {
				want += ",32" // from GNU make, and rightly kept ignored
			}
			if ign := expectReady(t, func() (string, bool) { return p.Line(testproc.Timeout) }); ign != want {
				t.Errorf("app ignores %s, want %s", ign, want)
			}
			for _, s := range tc.ignored {
				p.Signal(s)
			}
			p.Signal(syscall.SIGUSR1) // an ignored signal forwarded would show first
			p.ExpectLine("10")
			p.Stdin.Close()
			if got := p.ExitCode(); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
		})
	}
}

// ttyProc is the wrapper run as the session leader of a pseudo-terminal,
// as `docker run -t` runs it: stdin and stdout are the terminal.
type ttyProc struct {
	cmd    *exec.Cmd
	master *os.File
	lines  chan string
	done   chan struct{}
	status syscall.WaitStatus
	stderr testproc.Buffer
}

func startTTY(t *testing.T, env []string, argv ...string) *ttyProc {
	t.Helper()
	master, tty := testproc.OpenPTY(t)
	p := &ttyProc{master: master, lines: make(chan string, 64), done: make(chan struct{})}
	p.cmd = exec.Command(bin(t), argv...)
	p.cmd.Env = append(baseEnv(), env...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = tty, tty, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // EOF (EIO) on master once the session is gone
	go func() {
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			p.lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(p.lines)
	}()
	go func() {
		_ = p.cmd.Wait()
		p.status = p.cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("envoy-lifecycle stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func (p *ttyProc) line() (string, bool) {
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(testproc.Timeout):
		return "", false
	}
}

func (p *ttyProc) expect(t *testing.T, want string) {
	t.Helper()
	if got, ok := p.line(); !ok || got != want {
		t.Fatalf("terminal line got %q (ok=%v), want %q", got, ok, want)
	}
}

func (p *ttyProc) write(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func (p *ttyProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(testproc.Timeout):
		t.Fatalf("envoy-lifecycle did not exit within %v", testproc.Timeout)
	}
	if p.status.Signaled() {
		t.Fatalf("envoy-lifecycle died of %v", p.status.Signal())
	}
	return p.status.ExitStatus()
}

// TestTerminal runs the wrapper on a terminal in each process-group mode:
// the app reads the terminal (with PROCESS_GROUP=true it used to stop on
// SIGTTIN and hang), and Ctrl-C reaches it exactly once (it used to get it
// from the terminal and again from the wrapper).
func TestTerminal(t *testing.T) {
	t.Parallel()
	for _, pg := range []string{"", "true", "false"} {
		t.Run("PROCESS_GROUP="+pg, func(t *testing.T) {
			t.Parallel()
			env := []string{"ENVOY_LIFECYCLE_STOP_TIMEOUT=0"}
			if pg != "" {
				env = append(env, "ENVOY_LIFECYCLE_PROCESS_GROUP="+pg)
			}
			p := startTTY(t, env, app("echo-all")...)
			expectReady(t, p.line)
			p.write(t, "hi\n")
			p.expect(t, "read hi")
			p.write(t, "\x03") // Ctrl-C
			p.expect(t, "2")
			// A kill(2) of the wrapper is forwarded; a second SIGINT from
			// the Ctrl-C would show up before it.
			if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			p.expect(t, "10")
			p.write(t, "\x04") // Ctrl-D: EOF
			if got := p.exitCode(t); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
			for l, ok := p.line(); ok; l, ok = p.line() {
				t.Errorf("unexpected line: %q", l)
			}
		})
	}
}
