package testproc

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Proc is a started process: its stdout as lines, its stderr kept, its
// exit status once it ends. Cleanup kills its process group.
type Proc struct {
	Cmd    *exec.Cmd
	Stdin  io.WriteCloser
	Stderr *Buffer

	tb     testing.TB
	lines  chan string
	done   chan struct{}
	status syscall.WaitStatus
}

// Start starts bin with argv and env added to Env(), so a test binary named
// in argv plays its child command.
func Start(tb testing.TB, env []string, bin string, argv ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(bin, argv...)
	cmd.Env = Env(env...)
	return StartCmd(tb, cmd)
}

// StartCmd starts cmd in its own process group, with stdin a pipe, stdout
// read line by line and stderr kept (unless cmd sets them). When the test
// ends it kills the group and, if the test failed, logs the stderr.
func StartCmd(tb testing.TB, cmd *exec.Cmd) *Proc {
	tb.Helper()
	p := &Proc{Cmd: cmd, Stderr: &Buffer{}, tb: tb, lines: make(chan string, 256), done: make(chan struct{})}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Stderr
	}
	// Its own group, so cleanup kills the children with it; WaitDelay, so
	// an orphan holding stdout cannot block Wait.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.WaitDelay = 2 * time.Second
	var stdout io.Reader
	var err error
	if cmd.Stdout == nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			tb.Fatal(err)
		}
	}
	if cmd.Stdin == nil {
		if p.Stdin, err = cmd.StdinPipe(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("cannot start %s: %v", cmd.Path, err)
	}
	go func() {
		if stdout != nil {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				p.lines <- sc.Text()
			}
		}
		close(p.lines)
	}()
	go func() {
		_ = cmd.Wait()
		p.status = cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("%s stderr:\n%s", filepath.Base(cmd.Path), p.Stderr.String())
		}
	})
	return p
}

// Line returns the next stdout line, or false at EOF or after timeout.
func (p *Proc) Line(timeout time.Duration) (string, bool) {
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(timeout):
		return "", false
	}
}

// ExpectLine fails unless the next stdout line, within Timeout, is want.
func (p *Proc) ExpectLine(want string) {
	p.tb.Helper()
	got, ok := p.Line(Timeout)
	if !ok || got != want {
		p.tb.Fatalf("stdout line got %q (ok=%v), want %q", got, ok, want)
	}
}

// Signal sends sig to the process (not its group).
func (p *Proc) Signal(sig syscall.Signal) {
	p.tb.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("cannot signal %s: %v", filepath.Base(p.Cmd.Path), err)
	}
}

// Done is closed once the process has exited and been waited for.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits, within Timeout, for the process to exit and returns how.
func (p *Proc) Wait() syscall.WaitStatus {
	p.tb.Helper()
	select {
	case <-p.done:
	case <-time.After(Timeout):
		p.tb.Fatalf("%s did not exit within %v; stderr:\n%s", filepath.Base(p.Cmd.Path), Timeout, p.Stderr.String())
	}
	return p.status
}

// ExitCode waits for the process to exit and returns its code; it fails if
// a signal killed it.
func (p *Proc) ExitCode() int {
	p.tb.Helper()
	st := p.Wait()
	if st.Signaled() {
		p.tb.Fatalf("%s died of %v", filepath.Base(p.Cmd.Path), st.Signal())
	}
	return st.ExitStatus()
}
