// Package pinned builds programs from the Go module proxy at pinned versions
// into a cache under the user's cache directory (~/.cache/envoy-lifecycle/),
// for tests only: the real pilot-agent (interop/, e2e/) and the Kubernetes
// binaries of the real node (e2e/). A cache hit runs no go command.
package pinned

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BuildTimeout bounds one build, module downloads included. A cold
// Kubernetes build takes about 6 minutes on 2 idle cores.
const BuildTimeout = 20 * time.Minute

// ProbeTimeout bounds the check, before a build, that the module proxy
// answers: its first request is small (one module's .info and .mod).
const ProbeTimeout = 20 * time.Second

// OfflineError says a build could not reach the Go module proxy. Why is one
// line: go's line that says so, or the probe's timeout.
type OfflineError struct{ Why string }

func (e *OfflineError) Error() string {
	return "the Go module proxy is unreachable (offline?): " + e.Why
}

// build is one cached build: a scratch module (GoMod) in which build runs,
// writing Outputs into out. The entry is complete once every output is in
// the cache directory; they are renamed into place in order, so the last
// one marks completion.
type build struct {
	name    string // the cache directory's name
	goMod   string
	probe   string // module@version asked of the proxy first, so an offline run fails at once, not after the build's retries
	outputs []string
	build   func(g goCmd, out string) error
}

// goCmd runs a go command in the scratch module and returns its stdout.
type goCmd func(args ...string) ([]byte, error)

// CacheDir is where pinned builds are kept.
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a cache directory: %w", err)
	}
	return filepath.Join(base, "envoy-lifecycle"), nil
}

// run returns the cache directory of b, building it first on a miss. hit
// reports whether nothing had to be built.
func (b build) run(ctx context.Context) (dir string, hit bool, err error) {
	base, err := CacheDir()
	if err != nil {
		return "", false, err
	}
	dir = filepath.Join(base, b.name)
	if b.cached(dir) {
		return dir, true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("cannot create cache directory: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if b.cached(dir) {
		return dir, true, nil // built by a concurrent run
	}

	mod := filepath.Join(dir, "module")
	if err := os.RemoveAll(mod); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(b.goMod), 0o644); err != nil {
		return "", false, err
	}
	if err := probe(ctx, mod, b.probe); err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	g := func(args ...string) ([]byte, error) {
		cmd := goCommand(ctx, mod, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if why := networkError(stderr.String()); why != "" {
				return nil, &OfflineError{Why: why}
			}
			return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 4000))
		}
		return out, nil
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	if err := b.build(g, tmp); err != nil {
		return "", false, fmt.Errorf("cannot build %s: %w", b.name, err)
	}
	for _, o := range b.outputs {
		if err := os.Rename(filepath.Join(tmp, o), filepath.Join(dir, o)); err != nil {
			return "", false, fmt.Errorf("cannot build %s: %w", b.name, err)
		}
	}
	return dir, false, nil
}

// goCommand is go with args in the scratch module mod: outside any
// workspace, static, and free to write go.sum there.
func goCommand(ctx context.Context, mod string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	return cmd
}

// probe asks the module proxy for module (module@version) within
// ProbeTimeout and returns an *OfflineError if it can't be reached.
func probe(ctx context.Context, mod, module string) error {
	if module == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	out, err := goCommand(ctx, mod, "list", "-m", "-json", module).CombinedOutput()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return &OfflineError{Why: "no answer within " + ProbeTimeout.String()}
	case networkError(string(out)) != "":
		return &OfflineError{Why: networkError(string(out))}
	}
	return fmt.Errorf("cannot resolve %s: %v\n%s", module, err, tail(string(out), 4000))
}

// networkError returns the line of go's output that says the network or
// the proxy is unavailable, or "".
func networkError(out string) string {
	for _, line := range strings.Split(out, "\n") {
		for _, sign := range []string{"dial tcp", "no such host", "connection refused", "i/o timeout",
			"network is unreachable", "GOPROXY=off", "TLS handshake timeout", "proxyconnect"} {
			if strings.Contains(line, sign) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

func (b build) cached(dir string) bool {
	for _, o := range b.outputs {
		if _, err := os.Stat(filepath.Join(dir, o)); err != nil {
			return false
		}
	}
	return true
}

// lock takes an exclusive flock on path, polling so the wait is bounded by
// ctx and BuildTimeout.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock: %w", err)
	}
	deadline := time.Now().Add(BuildTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w", path, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, fmt.Errorf("%s still locked after %v: another build is stuck", path, BuildTimeout)
		}
		time.Sleep(200 * time.Millisecond) // polling the lock against the deadline above
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
