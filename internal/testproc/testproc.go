// Package testproc is the test support shared by every package's tests: the
// test binary playing a child process (Go's os/exec exec_test.go), a harness
// for a started binary, the one build of the shipped binary, waits with
// deadlines, a synchronised buffer, a logger writing through t.Logf and an
// upstream that holds requests. It is imported by tests only;
// TestBinaryLinksNoTestSupport (image_test.go) proves the binary links none
// of it.
package testproc

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait in this package; nothing comes near it unless a
// test is broken.
const Timeout = 20 * time.Second

// Marker is the environment variable that makes the test binary run the
// child command named by its first argument instead of the tests.
const Marker = "TESTPROC_CHILD"

// registry holds the child commands and which ones a test asked for.
type registry struct {
	mu   sync.Mutex
	cmds map[string]func(args []string) int
	used map[string]bool
}

var commands = &registry{cmds: map[string]func([]string) int{}, used: map[string]bool{}}

// Register adds child command name, run as fn(args) with its exit code the
// process's. Call it from init or from TestMain before Main.
func Register(name string, fn func(args []string) int) {
	commands.mu.Lock()
	defer commands.mu.Unlock()
	if _, dup := commands.cmds[name]; dup {
		panic("testproc: child command " + name + " registered twice")
	}
	commands.cmds[name] = fn
}

// RegisterAll registers every command of cmds, for a package that keeps its
// commands in one map.
func RegisterAll(cmds map[string]func(args []string) int) {
	for name, fn := range cmds {
		Register(name, fn)
	}
}

// MarkUsed records child commands that run only inside other children (a
// parent process never asks for them), so the unused check counts them.
func MarkUsed(names ...string) {
	commands.mu.Lock()
	defer commands.mu.Unlock()
	for _, n := range names {
		commands.used[n] = true
	}
}

// Argv returns the command line that makes the test binary run child
// command name with args. The child needs Env() (or Marker=1) to obey it.
func Argv(name string, args ...string) []string {
	commands.mu.Lock()
	_, ok := commands.cmds[name]
	commands.used[name] = true
	commands.mu.Unlock()
	if !ok {
		// A typo would otherwise surface as a child exiting 2.
		panic("testproc: child command " + name + " is not registered")
	}
	return append([]string{os.Args[0], name}, args...)
}

// Env returns this process's environment with Marker set, so a test binary
// started with it runs the child command in its arguments. A marker or
// GORACE we inherited is replaced: the child would see the first of two.
func Env(extra ...string) []string {
	// A race-enabled child otherwise sleeps 1s at exit.
	gorace := "atexit_sleep_ms=0"
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, Marker+"="):
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
		default:
			env = append(env, kv)
		}
	}
	return append(append(env, Marker+"=1", "GORACE="+gorace), extra...)
}

// BareEnv is the least environment a child needs: PATH, Marker and GORACE,
// for a process that must start from an empty environment, as a
// container's does.
func BareEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), Marker + "=1", "GORACE=atexit_sleep_ms=0"}
}

// Main runs the child command when the test binary is a child, and the tests
// otherwise; it does not return. Packages that must set something up between
// the two call Dispatch and Run themselves.
func Main(m *testing.M) {
	Dispatch()
	os.Exit(Run(m))
}

// Dispatch runs the child command named by os.Args[1] and exits if Marker is
// set; otherwise it returns at once.
func Dispatch() {
	if os.Getenv(Marker) != "1" {
		return
	}
	commands.mu.Lock()
	var fn func([]string) int
	if len(os.Args) > 1 {
		fn = commands.cmds[os.Args[1]]
	}
	commands.mu.Unlock()
	if fn == nil {
		fmt.Fprintf(os.Stderr, "testproc: unknown child command %q; registered: %q\n", os.Args[1:], commands.names())
		os.Exit(2)
	}
	os.Exit(fn(os.Args[2:]))
}

// Run runs the tests, removes the binaries Build made, and fails a green run
// that left a registered child command unused: like os/exec's tests, a
// command no test runs is dead code. Only a full run can tell, so -run,
// -skip, -short and -list turn the check off.
func Run(m *testing.M) int {
	code := m.Run()
	removeBuilds()
	if code != 0 || filtered() {
		return code
	}
	return commands.check(os.Stderr)
}

// filtered reports whether a flag left some tests out of this run.
func filtered() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return testing.Short()
}

// check returns 1, and says which, if a registered command was never used.
func (r *registry) check(w io.Writer) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var unused []string
	for name := range r.cmds {
		if !r.used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) == 0 {
		return 0
	}
	sort.Strings(unused)
	fmt.Fprintf(w, "testproc: child commands registered but never used by a test: %q\n", unused)
	return 1
}

func (r *registry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n []string
	for name := range r.cmds {
		n = append(n, name)
	}
	sort.Strings(n)
	return n
}
