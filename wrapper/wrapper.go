// Package wrapper starts, signals, reaps and waits for the wrapped app. It
// knows processes, not Envoy.
//
// One goroutine, the reaper, makes every wait4 call in the process: it wakes
// on SIGCHLD, reaps every child that has exited, hands a registered child's
// status to its Child and logs the others (orphans reparented to us when we
// are PID 1 or a subreaper). Nothing else in the process may wait for a child:
// no exec.Cmd.Wait, Run or Output, and no os.Process.Wait, or the reaper and
// that caller steal each other's statuses.
//
// The reaper is started by the first Start and runs for the life of the
// process. It logs through the Logger of that first Child.
//
// The package also holds the signal policy, what the wrapper does with each
// signal 1..64 (SignalTable), which Catch applies to the process; and the
// terminal: an app in its own group gets the terminal's foreground.
package wrapper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

var (
	// ErrMissingCommand is returned by New when Options.Command is empty.
	ErrMissingCommand = errors.New("missing command")

	// ErrNotForwarded is returned by Signal for SIGCHLD and SIGURG. SIGCHLD
	// belongs to the reaper and SIGURG is the Go runtime's preemption signal;
	// neither means anything to the app.
	ErrNotForwarded = errors.New("signal is not forwarded")

	// ErrNotStarted is returned by Signal and Kill before a successful Start.
	ErrNotStarted = errors.New("child not started")

	// ErrAlreadyStarted is returned by a second call to Start. A Child runs
	// at most once.
	ErrAlreadyStarted = errors.New("child already started")
)

// Options describes the app to run. The zero value of each field is usable
// except Command.
type Options struct {
	// Command is the program to run. A name without a slash is looked up
	// in the wrapper's PATH like a shell does (exec.LookPath); a name with
	// a slash is used as is. Required.
	Command string

	// Args are the arguments after the program name. May be nil.
	Args []string

	// Env is the app's whole environment. Nil inherits the wrapper's; an
	// empty non-nil slice gives an empty environment.
	Env []string

	// Dir is the app's working directory. Empty means the wrapper's.
	Dir string

	// Stdin, Stdout and Stderr are handed to the app as they are, so no
	// copy goroutines run. Nil means the wrapper's own.
	Stdin, Stdout, Stderr *os.File

	// Setpgid runs the app in its own process group, and Signal and Kill
	// then reach the whole group. If Stdin is the wrapper's controlling
	// terminal and the wrapper's group is its foreground, the app's group is
	// made the foreground for the app's life, as tini does, and the
	// wrapper's group gets it back when the app has been reaped. False
	// leaves the app in the wrapper's group and signals reach the app only.
	Setpgid bool

	// Logger receives debug logs. Nil discards them.
	Logger hclog.Logger
}

// Child is one run of the app. Its methods are safe for concurrent use.
type Child struct {
	opts   Options
	log    hclog.Logger
	exitCh chan Status

	mu      sync.Mutex
	started bool
	done    bool // the status has been delivered; cmd.Process is released
	pid     int
	cmd     *exec.Cmd
	reaper  *reaper
	tty     *os.File // the terminal the app's group was given, if any
}

// New checks o and returns a Child that has not been started.
func New(o Options) (*Child, error) {
	if o.Command == "" {
		return nil, ErrMissingCommand
	}
	o.Args = append([]string(nil), o.Args...)
	if o.Env != nil {
		o.Env = append([]string{}, o.Env...)
	}
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Child{opts: o, log: log, exitCh: make(chan Status, 1)}, nil
}

// Start starts the app. It fails with *StartError, whose ExitStatus is 127
// when the command is not found and 126 when it cannot be executed, or with
// ErrAlreadyStarted. After a failed Start, ExitCh never delivers.
func (c *Child) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start()
}

func (c *Child) start() error {
	if c.started {
		return ErrAlreadyStarted
	}
	// Not CommandContext: the app must exit on its own so we return its
	// exit code, and only Signal and Kill stop it.
	cmd := exec.Command(c.opts.Command, c.opts.Args...)
	cmd.Env = c.opts.Env
	cmd.Dir = c.opts.Dir
	// Assigned one by one: a nil *os.File in an io.Reader is not nil.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if c.opts.Stdin != nil {
		cmd.Stdin = c.opts.Stdin
	}
	if c.opts.Stdout != nil {
		cmd.Stdout = c.opts.Stdout
	}
	if c.opts.Stderr != nil {
		cmd.Stderr = c.opts.Stderr
	}
	var tty *os.File
	if c.opts.Setpgid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if f := cmd.Stdin.(*os.File); takeTerminal(f) {
			// The child calls tcsetpgrp between fork and exec, with
			// signals blocked, as tini does.
			cmd.SysProcAttr.Foreground = true
			cmd.SysProcAttr.Ctty = int(f.Fd())
			tty = f
		}
	}

	r := startReaper(c.log)
	pid, err := r.start(c, cmd)
	if err != nil {
		return &StartError{Command: c.opts.Command, Err: err}
	}
	c.started, c.pid, c.cmd, c.reaper, c.tty = true, pid, cmd, r, tty
	c.log.Debug("child started", "pid", pid, "path", cmd.Path, "setpgid", c.opts.Setpgid, "terminal", tty != nil)
	return nil
}

// Pid returns the app's process id, or 0 before a successful Start.
func (c *Child) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// Signal sends sig to the app, or to its process group with
// Options.Setpgid. Once the app has been reaped it returns
// os.ErrProcessDone and signals nothing, so a recycled pid is never hit;
// callers log that as a warning. SIGCHLD and SIGURG are refused with
// ErrNotForwarded.
func (c *Child) Signal(sig os.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signal(sig)
}

// Kill sends SIGKILL like Signal does.
func (c *Child) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signal(syscall.SIGKILL)
}

func (c *Child) signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("cannot forward %v: not a syscall.Signal", sig)
	}
	if s == syscall.SIGCHLD || s == syscall.SIGURG {
		return fmt.Errorf("cannot forward %v: %w", s, ErrNotForwarded)
	}
	if !c.started {
		return ErrNotStarted
	}
	if c.done {
		return os.ErrProcessDone
	}
	return c.reaper.signal(c, s)
}

// ExitCh returns the channel that receives the app's status exactly once,
// after the app has exited and been reaped, and is then closed. It is the
// same channel for the life of the Child, so it may be cached.
func (c *Child) ExitCh() <-chan Status {
	return c.exitCh
}

// exited is called by the reaper, never under its lock, once c's process has
// been reaped.
func (c *Child) exited(st Status) {
	c.mu.Lock()
	c.done = true
	cmd, tty := c.cmd, c.tty
	c.mu.Unlock()

	// Before the status goes out, so the caller finds its terminal back.
	if tty != nil {
		c.giveTerminalBack(tty)
	}

	c.log.Debug("child exited", "pid", st.Pid, "status", st.String())
	c.exitCh <- st // buffered, and the only send
	close(c.exitCh)
	// done is set, so no Signal can use the handle any more.
	_ = cmd.Process.Release()
}
