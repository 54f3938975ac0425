package testproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
	env, args, err := DockerBuild(root)
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
	cmd := exec.Command("go", append(append(args, "-o", out), pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
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

// DockerBuild reads the Dockerfile at the module root and returns the
// environment and `go build` arguments of its build line, without -o and
// the package, so tests build what the image ships. Variables take their
// ARG defaults, except VERSION and COMMIT (Version, Commit) and the
// platform, which stays the host's.
func DockerBuild(root string) (env, args []string, err error) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{"VERSION": Version, "COMMIT": Commit}
	var line string
	// Join continued lines, then take the ARG defaults and the RUN line
	// that builds.
	for l := range strings.SplitSeq(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "ARG "); ok {
			for _, f := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(f, "="); ok {
					if _, set := vars[k]; !set {
						vars[k] = v
					}
				}
			}
		}
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, " go build ") {
			line = l
			break
		}
	}
	at := strings.Index(line, " go build ")
	if at < 0 {
		return nil, nil, errors.New("Dockerfile: no RUN line with `go build`")
	}
	cmdline := line[at+len(" go build "):]
	prefix := strings.Fields(line[:at])
	for _, f := range prefix {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !isEnvName(k) {
			continue
		}
		// $TARGETOS and friends are buildx's; the tests run on the host.
		if strings.HasPrefix(v, "$") {
			continue
		}
		env = append(env, k+"="+v)
	}
	words, err := shellWords(cmdline)
	if err != nil {
		return nil, nil, fmt.Errorf("Dockerfile: go build line: %w", err)
	}
	args = []string{"build"}
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-o":
			i++ // the image's output path; the caller picks its own
		case i == len(words)-1 && !strings.HasPrefix(w, "-"):
			// the package, which the caller names
		default:
			args = append(args, os.Expand(w, func(k string) string { return vars[k] }))
		}
	}
	return env, args, nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// shellWords splits s as sh would for words with double quotes and no
// escapes, which is all the Dockerfile's build line uses.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			in = true
		case (r == ' ' || r == '\t') && !quoted:
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
