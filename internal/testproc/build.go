package testproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"envoy-lifecycle/internal/dockerbuild"
)

// Version and Commit are stamped into every binary Build makes, as the
// Dockerfile stamps its VERSION and COMMIT build arguments.
const (
	Version = "v0.0.0-test"
	Commit  = "0123abc"
)

// A build is one binary, built once per test process.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{}
	buildDir string
)

// Build returns the shipped binary, built exactly as the Dockerfile's
// `go build` line builds it (see DockerBuild). The first call builds it;
// later calls in the same test process reuse it.
func Build(tb testing.TB) string {
	tb.Helper()
	return BuildMain(tb, ".")
}

// BuildMain builds main package pkg of this module ("." is the shipped
// binary, "./envoyfake/cmd/envoyfake" the fake) with the Dockerfile's
// flags, once per test process, and returns the binary's path.
func BuildMain(tb testing.TB, pkg string) string {
	tb.Helper()
	buildsMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{}
		builds[pkg] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		tb.Fatalf("cannot build %s: %v", pkg, b.err)
	}
	return b.path
}

func goBuild(pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	buildsMu.Lock()
	if buildDir == "" {
		buildDir, err = os.MkdirTemp("", "testproc-build")
	}
	dir := buildDir
	buildsMu.Unlock()
	if err != nil {
		return "", err
	}
	name := filepath.Base(filepath.Join(root, pkg))
	if pkg == "." {
		name = "envoy-lifecycle"
	}
	out := filepath.Join(dir, name)
	cmd, err := dockerbuild.Command(root, out, pkg, buildArgs())
	if err != nil {
		return "", err
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out, nil
}

// removeBuilds deletes what Build made; Run calls it after the tests.
func removeBuilds() {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// ModuleRoot returns the directory holding this module's go.mod, found from
// the working directory up (go test runs in the package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// DockerBuild returns the environment and `go build` arguments Build uses:
// the Dockerfile's, with VERSION and COMMIT set to Version and Commit.
func DockerBuild(root string) (env, args []string, err error) {
	return dockerbuild.Flags(root, buildArgs())
}

func buildArgs() map[string]string { return map[string]string{"VERSION": Version, "COMMIT": Commit} }
