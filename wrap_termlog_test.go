package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/termlog"
)

// Issue 14.1, 14.7 and 14.15 against the built binary: the termination log
// never follows a symlink, never cuts data, never hangs the exit, and holds
// one line.

// termlogRun runs the wrapper around argv with the termination log at path
// and returns its exit code and stderr.
func termlogRun(t *testing.T, path string, argv ...string) (int, string) {
	t.Helper()
	p := start(t, []string{"ENVOY_LIFECYCLE_TERMINATION_LOG=" + path}, argv...)
	code := p.ExitCode()
	return code, p.Stderr.String()
}

func wantWarned(t *testing.T, stderr, why string) {
	t.Helper()
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "[WARN]") && strings.Contains(l, "termination log not written") && strings.Contains(l, why) {
			return
		}
	}
	t.Errorf("no WARN saying the termination log was not written (%s):\n%s", why, stderr)
}

// A symlink to somebody's data (the attack cut /etc/passwd) and a file with
// data in it are both left as they are.
func TestTerminationLogLeavesDataAlone(t *testing.T) {
	t.Parallel()
	for _, link := range []bool{true, false} {
		name, why := "file with data", "already holds data"
		if link {
			name, why = "symlink", "symlink"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const data = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
			precious := filepath.Join(dir, "passwd")
			if err := os.WriteFile(precious, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			path := precious
			if link {
				path = filepath.Join(dir, "tl")
				if err := os.Symlink(precious, path); err != nil {
					t.Fatal(err)
				}
			}
			code, stderr := termlogRun(t, path, app("exit", "4")...)
			if code != 4 {
				t.Errorf("exit code got %d, want 4", code)
			}
			if got, _ := os.ReadFile(precious); string(got) != data {
				t.Errorf("the data got %q, want it intact", got)
			}
			wantWarned(t, stderr, why)
		})
	}
}

// A FIFO nobody reads used to block the open forever, after the app had
// exited and beyond SIGTERM.
func TestTerminationLogFIFODoesNotHang(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "tl")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	code, stderr := termlogRun(t, fifo, app("exit", "5")...)
	if code != 5 {
		t.Errorf("exit code got %d, want 5", code)
	}
	// The write is bounded by termlog.Timeout; the rest is slack for a
	// loaded machine, far below "forever".
	if took, limit := time.Since(began), termlog.Timeout+5*time.Second; took > limit {
		t.Errorf("wrapper took %v to exit, want under %v", took, limit)
	}
	wantWarned(t, stderr, "not a regular file")
}

func TestTerminationLogOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tl")
	// A command path with a newline puts one in the cause.
	code, _ := termlogRun(t, path, filepath.Join(dir, "no\nsuch"))
	if code != 127 {
		t.Errorf("exit code got %d, want 127", code)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "\n"); n != 1 || !strings.HasSuffix(string(got), "\n") || !strings.Contains(string(got), "no such") {
		t.Errorf("termination log got %q, want one line naming the command", got)
	}
}

// A password in a URL the wrapper was given stays out of the message that
// kubectl describe pod shows. A kill URL that is not local is refused
// without a request, and the refusal names it.
func TestTerminationLogRedacted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tl")
	p := start(t, []string{"ENVOY_LIFECYCLE_TERMINATION_LOG=" + path, "ENVOY_KILL_API=http://u:s3cret@192.0.2.1/quit"}, app("exit", "0")...)
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code got %d, want 0", code)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "s3cret") || !strings.Contains(string(got), "REDACTED@192.0.2.1") {
		t.Errorf("termination log got %q, want the kill URL with its password hidden", got)
	}
}

// The default path is missing outside Kubernetes: that is no warning.
func TestTerminationLogDefaultMissingIsQuiet(t *testing.T) {
	t.Parallel()
	if _, err := os.Lstat(termlog.Default); err == nil {
		t.Skipf("%s exists on this machine", termlog.Default)
	}
	p := start(t, nil, app("exit", "0")...)
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code got %d, want 0", code)
	}
	stderr := p.Stderr.String()
	if strings.Contains(stderr, "[WARN]") || !strings.Contains(stderr, "[DEBUG] envoy-lifecycle: no termination log written") {
		t.Errorf("want a debug line and no warning for a missing %s:\n%s", termlog.Default, stderr)
	}
}
