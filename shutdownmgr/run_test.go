package shutdownmgr

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/quit"
)

func TestLogOutputToPID1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stdout1 := filepath.Join(dir, "pid1-stdout")
	if err := os.WriteFile(stdout1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "fd1")
	cases := []struct {
		name, mode, path string
		pid              int
		tee, err         bool
	}{
		{"auto, not pid 1, writable", "auto", stdout1, 42, true, false},
		{"auto, pid 1", "auto", stdout1, 1, false, false},
		{"auto, not writable", "auto", missing, 42, false, false},
		{"true, not writable", "true", missing, 42, false, true},
		{"true, writable", "true", stdout1, 1, true, false},
		{"false", "false", stdout1, 42, false, false},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		w, err := LogOutput(c.mode, &stderr, c.path, c.pid)
		if (err != nil) != c.err {
			t.Errorf("%s: error got %v, want error %v", c.name, err, c.err)
		}
		if _, tee := w.(*teeWriter); tee != c.tee {
			t.Errorf("%s: tee got %v, want %v", c.name, tee, c.tee)
		}
	}
	// A copy that stops working never breaks the logs.
	f, err := os.Open(stdout1) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stderr bytes.Buffer
	tw := &teeWriter{main: &stderr, extra: f}
	for i := 0; i < 2; i++ {
		if _, err := tw.Write([]byte("line\n")); err != nil {
			t.Errorf("write %d failed: %v", i, err)
		}
	}
	if stderr.String() != "line\nline\n" {
		t.Errorf("stderr got %q", stderr.String())
	}
}

// Run: a signal terminates (readiness fails, the drain starts), the manager
// waits for the drain, and a second signal ends the wait.
func TestServerRunSecondSignal(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	envoytest.Hold(t, e, h)
	// A deadline past testproc.Timeout: only the second signal can end the wait.
	s := MustOpenServer(t, e, func(s *Server) { s.DrainOnTerminate, s.Drain.Deadline = true, time.Minute })
	sigs := make(chan os.Signal, 2)
	done := make(chan error, 1)
	go func() { done <- s.Run(sigs) }()
	sigs <- syscall.SIGTERM
	envoytest.WaitRequests(t, e, "/stats", 2)
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while the drain runs", err)
	default:
	}
	if w := record(s, http.MethodGet, "/readyz"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the signal got %d, want 503", w.Code)
	}
	sigs <- syscall.SIGTERM
	if err := testproc.Recv(t, "Run to return after the second signal", done); err != nil {
		t.Errorf("Run got %v, want nil", err)
	}
}

// RunUntil: a signal cancels the drain, is returned, and leaves no ready
// file; without one the drain finishes.
func TestOnceRunUntil(t *testing.T) {
	t.Parallel()
	e, h := startEnvoy(t, envoyfake.Options{})
	admin := envoytest.Client(t, e.AdminURL())
	ready := filepath.Join(t.TempDir(), "ok")
	o := Once{Drain: quit.Drain{Admin: admin, Period: 10 * time.Millisecond}, ReadyFile: ready, Logger: testproc.Logger(t)}
	envoytest.Hold(t, e, h)
	sigs := make(chan os.Signal, 1)
	type out struct {
		res quit.Result
		sig os.Signal
		err error
	}
	done := make(chan out, 1)
	go func() { r, s, err := o.RunUntil(sigs); done <- out{r, s, err} }()
	envoytest.WaitRequests(t, e, "/stats", 2)
	sigs <- syscall.SIGINT
	got := testproc.Recv(t, "RunUntil to return after the signal", done)
	if got.sig != syscall.SIGINT || got.res.Reason != quit.ReasonCancelled || got.err != nil {
		t.Errorf("RunUntil got (%v, %v, %v), want (cancelled, SIGINT, nil)", got.res.Reason, got.sig, got.err)
	}
	if fileExists(ready) {
		t.Error("ready file written by a cancelled drain")
	}

	h.Release()
	testproc.WaitFor(t, "the held connection to close", func() bool { return e.ActiveConnections() == 0 })
	if res, sig, err := o.RunUntil(make(chan os.Signal)); sig != nil || res.Reason != quit.ReasonDrained || err != nil {
		t.Errorf("RunUntil without a signal got (%v, %v, %v), want (drained, nil, nil)", res.Reason, sig, err)
	}
	if !fileExists(ready) {
		t.Error("no ready file after the drain")
	}
}
