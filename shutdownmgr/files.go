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

// writeReadyFile creates the ready file once a drain is over. An empty path
// writes nothing, and so does a drain that never reached Envoy's admin: it
// failed no health check, so Envoy stays held (serving) until the waiter's
// deadline instead of being stopped with its connections open.
func writeReadyFile(path string, res quit.Result, log hclog.Logger) {
	if path == "" {
		return
	}
	if res.Reason == "admin unreachable" {
		log.Warn("drain failed; not writing the ready file", "path", path, "reason", res.Reason)
		return
	}
	line := fmt.Sprintf("reason=%q connections=%d took=%s\n", res.Reason, res.Remaining, res.Took)
	if err := writeFileAtomic(path, []byte(line)); err != nil {
		log.Error("cannot write ready file", "path", path, "error", err)
		return
	}
	log.Info("ready file written", "path", path)
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
	log.Info("found a drain from an earlier run; this pod is not terminating, undoing it",
		"path", path, "by_pid", st.PID, "at", st.At, "healthcheck_failed", st.HealthcheckFailed)
	if st.ListenersDrained {
		log.Error("envoy's listeners may have been drained by the earlier run, which cannot be undone; restart the envoy container if traffic is refused")
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
				log.Error("health checks not restored; state file kept for the next start", "path", path, "reason", ctx.Err(), "took", time.Since(start))
				return
			case <-t.C:
			}
			wait = min(wait*2, restoreMaxRetry)
		}
	}
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
// and leaves the ready file unwritten.
func (o *Once) Run(ctx context.Context) quit.Result {
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	removeStale(o.ReadyFile, "ready file", log)
	d := o.Drain
	recordDrain(o.StateFile, &d, log)
	res := d.Run(ctx, false)
	if res.Reason != ReasonCancelled {
		writeReadyFile(o.ReadyFile, res, log)
	}
	return res
}
