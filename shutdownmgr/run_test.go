package shutdownmgr

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
