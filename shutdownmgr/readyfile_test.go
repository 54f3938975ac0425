package shutdownmgr

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/quit"
)

// TestOnceUnreachableWritesNoReadyFile: a drain that never reached Envoy's
// admin (here a socket nobody listens on; on the real node, a socket the
// manager may not connect to) writes no ready file, so Envoy's /shutdown
// holds Envoy until its deadline (examples/04-contour-style-ready-file).
func TestOnceUnreachableWritesNoReadyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	admin, err := envoy.New("unix://"+filepath.Join(dir, "admin.sock"), envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ok")
	if err := os.WriteFile(ready, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Once{Drain: quit.Drain{Admin: admin, Period: 10 * time.Millisecond, Deadline: 10 * time.Second}, ReadyFile: ready, Logger: testproc.Logger(t)}
	if res, _ := o.Run(context.Background()); res.Reason != quit.ReasonUnreachable {
		t.Errorf("reason got %q, want admin unreachable", res.Reason)
	}
	if fileExists(ready) {
		t.Error("a drain that never reached the admin wrote the ready file")
	}
}
