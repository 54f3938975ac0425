package shutdownmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// errLocked means another process holds the state file's lock.
var errLocked = errors.New("state file locked by another process")

// stateLock is an exclusive flock on "<state file>.lock", which outlives the
// renames that replace the state file itself. The kernel drops it when its
// holder dies, so a crashed manager never leaves it behind.
type stateLock struct{ f *os.File }

// lockPollInterval is how often a wait for the lock tries again.
const lockPollInterval = 20 * time.Millisecond

// lockState takes the lock of the state file at path. It tries until ctx
// ends and then returns errLocked; an empty path locks nothing.
func lockState(ctx context.Context, path string) (*stateLock, error) {
	if path == "" {
		return &stateLock{}, nil
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open state lock: %w", err)
	}
	t := time.NewTicker(lockPollInterval)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &stateLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("cannot lock state file: %w", err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, errLocked
		case <-t.C:
		}
	}
}

// unlock releases the lock; it is safe on nil.
func (l *stateLock) unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close() // closing the last descriptor drops the flock
}
