package shutdownmgr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/quit"
)

// state is the content of the state file: what a drain did to Envoy that a
// restarted manager must undo. It is written before the drain touches Envoy,
// so a crash at any point leaves it behind.
type state struct {
	HealthcheckFailed bool      `json:"healthcheck_failed"`
	ListenersDrained  bool      `json:"listeners_drained"`
	Admin             string    `json:"admin"`
	PID               int       `json:"pid"`
	At                time.Time `json:"at"`
}

// maxStateFile bounds what is read of a state file.
const maxStateFile = 64 << 10

// writeFileAtomic writes data to path through a temporary file and a rename,
// so a reader sees the whole file or none.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// recordDrain writes the state file before d touches Envoy. An empty path
// records nothing.
func recordDrain(path string, d *quit.Drain, log hclog.Logger) {
	if path == "" || (d.SkipHealthcheckFail && d.SkipDrainListeners) {
		return
	}
	st := state{
		HealthcheckFailed: !d.SkipHealthcheckFail,
		ListenersDrained:  !d.SkipDrainListeners,
		PID:               os.Getpid(),
		At:                time.Now().UTC(),
	}
	if d.Admin != nil {
		st.Admin = d.Admin.Base().String()
	}
	b, _ := json.Marshal(st)
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		log.Warn("cannot write state file; a restart will not undo this drain", "path", path, "error", err)
		return
	}
	log.Debug("state file written", "path", path)
}

// ErrReadyFile means the drain ended but its ready file could not be
// written: whoever waits for the file will wait in vain, so the drain failed.
var ErrReadyFile = errors.New("cannot write ready file")

// writeReadyFile creates the ready file once a drain is over. An empty path
// writes nothing, and so does a drain that never reached Envoy's admin: it
// failed no health check, so Envoy stays held (serving) until the waiter's
// deadline instead of being stopped with its connections open.
// A failure to write wraps ErrReadyFile.
func writeReadyFile(path string, res quit.Result, log hclog.Logger) error {
	if path == "" {
		return nil
	}
	if res.Reason == quit.ReasonUnreachable {
		log.Warn("drain failed; not writing the ready file", "path", path, "reason", res.Reason)
		return nil
	}
	line := fmt.Sprintf("reason=%q connections=%d took=%s\n", res.Reason, res.Remaining, res.Took)
	if err := writeFileAtomic(path, []byte(line)); err != nil {
		log.Error("cannot write ready file; waiters will time out", "path", path, "error", err)
		return fmt.Errorf("%w %s: %w", ErrReadyFile, path, err)
	}
	log.Info("ready file written", "path", path)
	return nil
}

// drainLockWait bounds how long a drain waits for another process's
// restore to finish with the state file. Past it the drain goes on: a drain
// must never be held up by a stuck restore.
const drainLockWait = 2 * time.Second

// runDrain is every drain, the server's and Once's: take the state file's
// lock (so no other manager's restore POSTs /healthcheck/ok into it), record
// the drain, fail fast when Envoy's admin refuses connections, drain, and
// write the ready file unless the drain was cancelled or never reached
// Envoy's admin. The lock is held
// until the drain is over.
func runDrain(ctx context.Context, d quit.Drain, readyFile, stateFile string, log hclog.Logger) (quit.Result, error) {
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, drainLockWait)
	lock, err := lockState(lctx, stateFile)
	cancel()
	if err != nil {
		log.Warn("draining without the state file's lock", "path", stateFile, "error", err)
	}
	defer lock.unlock()
	recordDrain(stateFile, &d, log)
	var res quit.Result
	// Without this, a drain of a dead Envoy sits through its whole delay
	// before the first poll notices.
	if _, err := d.Admin.ServerInfo(ctx); errors.Is(err, envoy.ErrUnreachable) {
		log.Error("envoy admin unreachable; not draining", "admin", d.Admin.Base().String(), "error", err)
		res = quit.Result{Took: time.Since(start), Reason: quit.ReasonUnreachable}
	} else {
		res = d.Run(ctx, false)
	}
	if res.Reason == quit.ReasonCancelled {
		return res, nil
	}
	return res, writeReadyFile(readyFile, res, log)
}

// removeStale removes a file left by an earlier run: a manager that starts is
// never in a terminating pod, so a ready file it finds is stale.
func removeStale(path, what string, log hclog.Logger) {
	if path == "" {
		return
	}
	err := os.Remove(path)
	switch {
	case err == nil:
		log.Info("removed stale file", "file", what, "path", path)
	case !errors.Is(err, fs.ErrNotExist):
		log.Warn("cannot remove stale file", "file", what, "path", path, "error", err)
	}
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// restoreBackoff bounds the retries of the undo: first after 100ms, doubling
// up to 2s, within restoreTimeout.
const (
	restoreTimeout    = time.Minute
	restoreFirstRetry = 100 * time.Millisecond
	restoreMaxRetry   = 2 * time.Second
)

// restore undoes what the state file at path says an earlier run did to
// Envoy: POST /healthcheck/ok, retried until it succeeds, ctx ends or
// restoreTimeout passes. The file is removed once Envoy is healthy again.
// Drained listeners can't be undone; that is logged as an error.
func restore(ctx context.Context, path string, admin *envoy.Client, log hclog.Logger) {
	// One try, no wait: a held lock is a drain running in another
	// process, and undoing it would fight that drain.
	tryCtx, cancel := context.WithCancel(ctx)
	cancel()
	lock, err := lockState(tryCtx, path)
	if errors.Is(err, errLocked) {
		log.Warn("another process is draining with this state file; not undoing anything", "path", path)
		return
	}
	if err != nil {
		log.Error("cannot lock state file; not undoing anything", "path", path, "error", err)
		return
	}
	defer lock.unlock()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Debug("no state file; nothing to undo", "path", path)
		return
	}
	if err != nil {
		log.Error("cannot read state file", "path", path, "error", err)
		return
	}
	var st state
	err = json.NewDecoder(&limitedReader{f: f, left: maxStateFile}).Decode(&st)
	_ = f.Close()
	if err != nil {
		// Whatever it held, health checks OK is the safe state.
		log.Warn("state file unreadable; restoring health checks anyway", "path", path, "error", err)
		st.HealthcheckFailed = true
	}
	// The file is only worth acting on when the Envoy it describes is still
	// running: a state file left by an earlier run against another Envoy,
	// or one that has restarted since (a fresh process is healthy and has
	// its listeners), is stale, and is removed with one line.
	if base := admin.Base().String(); st.Admin != "" && st.Admin != base {
		removeState(path, log)
		log.Info("removed a state file from a run against another envoy", "path", path, "its_admin", st.Admin, "admin", base)
		return
	}
	info, infoErr := admin.ServerInfo(ctx)
	if infoErr == nil && restartedSince(info.Uptime, st.At) {
		removeState(path, log)
		log.Info("removed a state file from before envoy's last start; nothing to undo",
			"path", path, "drained_at", st.At, "envoy_uptime", info.Uptime)
		return
	}
	log.Info("found a drain from an earlier run; this pod is not terminating, undoing it",
		"path", path, "by_pid", st.PID, "at", st.At, "healthcheck_failed", st.HealthcheckFailed)
	switch {
	case st.ListenersDrained && infoErr == nil:
		// The drained process answers: its listeners may be closed for good.
		log.Error("envoy's listeners may have been drained by the earlier run, which cannot be undone; restart the envoy container if traffic is refused")
	case st.ListenersDrained:
		log.Warn("envoy is not answering; if it is the one the earlier run drained, restart it", "error", infoErr)
	}
	if st.HealthcheckFailed {
		ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
		defer cancel()
		start := time.Now()
		wait := restoreFirstRetry
		for attempt := 1; ; attempt++ {
			err := admin.OKHealthchecks(ctx)
			if err == nil {
				log.Info("health checks restored", "attempts", attempt, "took", time.Since(start))
				break
			}
			log.Warn("cannot restore health checks yet", "attempt", attempt, "error", err, "retry_in", wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				log.Warn("health checks not restored; state file kept for the next start", "path", path, "reason", ctx.Err(), "took", time.Since(start))
				return
			case <-t.C:
			}
			wait = min(wait*2, restoreMaxRetry)
		}
	}
	removeState(path, log)
}

// restartedSince reports whether an Envoy up for uptime (whole seconds,
// negative when unknown) started after at. The second of slack covers the
// rounding down.
func restartedSince(uptime time.Duration, at time.Time) bool {
	return uptime >= 0 && !at.IsZero() && uptime+time.Second < time.Since(at)
}

func removeState(path string, log hclog.Logger) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("cannot remove state file", "path", path, "error", err)
	}
}

// limitedReader fails past its limit instead of truncating silently.
type limitedReader struct {
	f    *os.File
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errors.New("state file too large")
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.f.Read(p)
	l.left -= int64(n)
	return n, err
}

// Once runs one drain without a server, as `envoy-lifecycle drain` does in
// an exec preStop hook: it removes a stale ready file, records the drain in
// StateFile, runs Drain and, unless the drain was cancelled or never
// reached Envoy's admin, writes ReadyFile. Empty paths skip their file.
type Once struct {
	Drain     quit.Drain
	ReadyFile string
	StateFile string
	Logger    hclog.Logger // nil: no logs
}

// Run drains once; cancelling ctx ends the drain with reason "cancelled"
// and leaves the ready file unwritten. An Envoy admin that refuses
// connections ends it at once with reason "admin unreachable". The error
// wraps ErrReadyFile when the ready file could not be written: the drain
// then failed, whatever its reason.
func (o *Once) Run(ctx context.Context) (quit.Result, error) {
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	removeStale(o.ReadyFile, "ready file", log)
	return runDrain(ctx, o.Drain, o.ReadyFile, o.StateFile, log)
}
