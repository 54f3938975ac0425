package examples

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/lbsim"
)

// The test binary plays the apps: run with EXAMPLES_TEST_APP=1 it
// dispatches its arguments to one of the commands below.
const appMarker = "EXAMPLES_TEST_APP"

var appCommands = map[string]func(args []string) int{
	// serve ADDR: the web app (lbsim.ServeApp): prints "ready", then on
	// SIGTERM "term <ns> inflight N served M", and exits 0.
	"serve": func(args []string) int { return lbsim.ServeApp(args[0], 5*time.Millisecond, os.Stdout) },
	// exit N: a Job that ends with code N.
	"exit": func(args []string) int { n, _ := strconv.Atoi(args[0]); return n },
	// fail-once FILE: a Job that fails its first run (creating FILE) and
	// succeeds the next.
	"fail-once": func(args []string) int {
		if _, err := os.Stat(args[0]); err == nil {
			fmt.Println("second run: ok")
			return 0
		}
		fmt.Println("first run: failing")
		os.WriteFile(args[0], nil, 0o644)
		return 1
	},
	// die-by-kill: a Job killed by SIGKILL (the OOM killer, say).
	"die-by-kill": func([]string) int {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
		return 1
	},
}

var (
	lifecycleBin string // the built envoy-lifecycle
	envoyfakeBin string // the built Envoy fake (envoyfake/cmd/envoyfake)
	usedMu       sync.Mutex
	usedApps     = map[string]bool{}
)

func TestMain(m *testing.M) {
	if os.Getenv(appMarker) == "1" {
		if len(os.Args) < 2 || appCommands[os.Args[1]] == nil {
			fmt.Fprintf(os.Stderr, "unknown app command %q\n", os.Args[1:])
			os.Exit(2)
		}
		os.Exit(appCommands[os.Args[1]](os.Args[2:]))
	}
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "examples-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	lifecycleBin = filepath.Join(dir, "envoy-lifecycle")
	envoyfakeBin = filepath.Join(dir, "envoyfake")
	for bin, pkg := range map[string]string{lifecycleBin: "envoy-lifecycle", envoyfakeBin: "envoy-lifecycle/envoyfake/cmd/envoyfake"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "cannot build %s: %v\n", pkg, err)
			return 1
		}
	}
	code := m.Run()
	// Like os/exec's tests: an app command no test uses is dead code.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.list").Value.String() == "" && !testing.Short() {
		var unused []string
		for name := range appCommands {
			if !usedApps[name] {
				unused = append(unused, name)
			}
		}
		sort.Strings(unused)
		if len(unused) > 0 {
			fmt.Fprintf(os.Stderr, "app commands never used by a test: %v\n", unused)
			code = 1
		}
	}
	return code
}

// app is the argv that makes the test binary play app command name.
func app(name string, args ...string) []string {
	usedMu.Lock()
	usedApps[name] = true
	usedMu.Unlock()
	return append([]string{os.Args[0], name}, args...)
}
