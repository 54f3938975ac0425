package wrapper

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// orphanPoll is how often StopOrphans checks whether the processes it
// signalled are gone.
const orphanPoll = 10 * time.Millisecond

// StopOrphans ends the processes the app left behind (daemons, background
// jobs) when this process is PID 1: each gets SIGTERM and up to grace to
// exit, then SIGKILL. Otherwise it does nothing and returns false. As PID 1
// of a PID namespace, exiting would have the kernel SIGKILL every process
// left in it with no warning; the reaper collects them as they exit. It
// returns true if some were signalled.
func StopOrphans(grace time.Duration, log hclog.Logger) bool {
	if os.Getpid() != 1 {
		return false
	}
	return stopAll(grace, log)
}

// stopAll signals every process but this one (kill -1) and waits up to grace
// for them all to be reaped.
func stopAll(grace time.Duration, log hclog.Logger) bool {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// ESRCH: nothing left but us.
	if err := syscall.Kill(-1, syscall.SIGTERM); err != nil {
		if !errors.Is(err, syscall.ESRCH) {
			log.Warn("cannot signal the processes left behind", "signal", "SIGTERM", "error", err)
		}
		return false
	}
	log.Info("processes left behind by the app; sent SIGTERM", "grace", grace)
	deadline := time.Now().Add(grace)
	// A zombie still answers kill -1 until the reaper has reaped it, so
	// ESRCH means every one has exited and been collected.
	for syscall.Kill(-1, 0) == nil {
		if time.Now().After(deadline) {
			log.Warn("processes left behind did not exit in time; killing them", "grace", grace)
			_ = syscall.Kill(-1, syscall.SIGKILL)
			return true
		}
		time.Sleep(orphanPoll)
	}
	log.Info("processes left behind have exited")
	return true
}
