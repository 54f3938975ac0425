package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envoy-lifecycle/envoyfake"
)

func TestTerminationLogWritten(t *testing.T) {
	t.Parallel()
	e := startEnvoy(t, envoyfake.Options{})
	path := filepath.Join(t.TempDir(), "termination-log")
	p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_TERMINATION_LOG="+path), app("die-by", "TERM")...)
	if got := p.exitCode(); got != 143 {
		t.Errorf("exit code got %d, want 143", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := string(data)
	for _, want := range []string{"exit 143", "killed by SIGTERM", "drain ", "(drained, 0 connections left)", "proxy stopped via envoy"} {
		if !strings.Contains(line, want) {
			t.Errorf("termination log %q lacks %q", line, want)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("termination log got %q, want one line", line)
	}
}
