package wrapper

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// reaper owns every wait4 in the process. Lock order: Child.mu, then
// reaper.mu; the reaper never takes a Child's lock while holding its own.
type reaper struct {
	log  hclog.Logger
	wake chan os.Signal

	// mu is held across each wait4 sweep, and across cmd.Start plus
	// registration, so a child is always registered before the next wait4
	// can reap it. While mu is held no wait4 runs, so every registered pid
	// is alive or a zombie and cannot be recycled.
	mu       sync.Mutex
	children map[int]*Child
}

var (
	reaperOnce sync.Once
	theReaper  *reaper
)

// testHookStarted, if set, runs between cmd.Start and registration. Tests
// use it to let the child exit inside that window.
var testHookStarted func(pid int)

// startReaper returns the process's reaper, starting it on first use with
// log. It runs until the process exits, so no waiter is ever left without
// an answer.
func startReaper(log hclog.Logger) *reaper {
	reaperOnce.Do(func() {
		r := &reaper{
			log: log,
			// One slot is enough: a SIGCHLD dropped on a full channel is
			// covered by the sweep already pending, which loops until
			// wait4 has nothing left.
			wake:     make(chan os.Signal, 1),
			children: make(map[int]*Child),
		}
		// Before the first fork, so no child's SIGCHLD is missed.
		signal.Notify(r.wake, syscall.SIGCHLD)
		sub, err := IsSubreaper()
		if err != nil {
			log.Debug("cannot tell if subreaper", "error", err)
		}
		// Orphans reach us only in these two cases (tini's reaper_check).
		log.Debug("reaper started", "pid1", os.Getpid() == 1, "subreaper", sub)
		go r.run()
		theReaper = r
	})
	return theReaper
}

func (r *reaper) run() {
	for range r.wake {
		r.sweep()
	}
}

// kick asks for a sweep without waiting for one.
func (r *reaper) kick() {
	select {
	case r.wake <- syscall.SIGCHLD:
	default: // a sweep is already pending
	}
}

// sweep reaps every child that has exited, then hands out the statuses
// outside the lock.
func (r *reaper) sweep() {
	type reaped struct {
		c  *Child
		st Status
	}
	var done []reaped

	r.mu.Lock()
	for {
		var st Status
		pid, err := syscall.Wait4(-1, &st.WaitStatus, syscall.WNOHANG, &st.Rusage)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			if !errors.Is(err, syscall.ECHILD) {
				r.log.Error("cannot wait for children", "error", err)
			}
			break
		}
		if pid <= 0 { // children left, none exited
			break
		}
		st.Pid = pid
		c, ok := r.children[pid]
		if !ok {
			r.log.Debug("reaped orphan", "pid", pid, "status", st.String())
			continue
		}
		delete(r.children, pid)
		done = append(done, reaped{c, st})
	}
	r.mu.Unlock()

	for _, d := range done {
		d.c.exited(d.st)
	}
}

// start runs cmd.Start and registers c under the lock, so a child that exits
// at once is handed to c rather than reaped as an orphan. Holding the lock
// also keeps the reaper away from the pid forkExec itself waits for when
// exec fails.
func (r *reaper) start(c *Child, cmd *exec.Cmd) (int, error) {
	r.mu.Lock()
	err := startWithDefaults(cmd)
	var pid int
	if err == nil {
		pid = cmd.Process.Pid
		if testHookStarted != nil {
			testHookStarted(pid)
		}
		r.children[pid] = c
	}
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Cheap insurance against a SIGCHLD the channel dropped.
	r.kick()
	return pid, nil
}

// signal sends s to c's process, or to its group with Setpgid, unless c has
// been reaped.
func (r *reaper) signal(c *Child, s syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.children[c.pid] != c {
		return os.ErrProcessDone // reaped; the status is on its way
	}
	if c.opts.Setpgid {
		// The leader is at worst a zombie, which keeps the group id from
		// being reused.
		err := syscall.Kill(-c.pid, s)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		if err != nil {
			return os.NewSyscallError("kill", err)
		}
		return nil
	}
	// A pidfd on Linux: it cannot reach a recycled pid either.
	return c.cmd.Process.Signal(s)
}
