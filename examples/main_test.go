package examples

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/lbsim"
)

// The test binary plays the apps (testproc): appCommands are what it can
// play.
var appCommands = map[string]func(args []string) int{
	// serve ADDR: the web app (lbsim.ServeApp): prints "ready", then on
	// SIGTERM "term <ns> inflight N served M", and exits 0.
	"serve": func(args []string) int { return lbsim.ServeApp(args[0], 5*time.Millisecond, os.Stdout) },
	// exit N: a Job that ends with code N.
	"exit": testproc.Exit,
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

func TestMain(m *testing.M) {
	testproc.RegisterAll(appCommands)
	testproc.Main(m)
}

// envoyfake is the built Envoy fake (envoyfake/cmd/envoyfake).
func envoyfake(t testing.TB) string {
	t.Helper()
	return testproc.BuildMain(t, "./envoyfake/cmd/envoyfake")
}
