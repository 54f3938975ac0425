package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

// The test binary plays the app (internal/testproc): these are its commands.
func TestMain(m *testing.M) {
	testproc.Register("exit", testproc.Exit)
	testproc.Register("die-by", testproc.DieBy)
	// echo-signals: print "ready", then the name of each signal as it
	// arrives, URG, CHLD and PIPE included; exit 0 when stdin closes.
	testproc.Register("echo-signals", testproc.EchoSignals(echoed...))
	testproc.Register("ignore-term", ignoreTerm)
	testproc.Register("stamp", stamp)
	testproc.Register("touch", func(args []string) int { os.WriteFile(args[0], nil, 0o644); return 0 })
	testproc.Register("spawn-orphan", spawnOrphan)
	testproc.Register("orphans", orphans)
	testproc.Main(m)
}

// echoed are the signals echo-signals reports.
var echoed = []syscall.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
	syscall.SIGWINCH, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGPWR, syscall.SIGXCPU, syscall.SIGXFSZ,
	syscall.SIGVTALRM, syscall.SIGIO, syscall.SIGURG, syscall.SIGCHLD, syscall.SIGPIPE,
}

// ignore-term: ignore SIGTERM, print "ready" and block until killed.
func ignoreTerm([]string) int {
	signal.Ignore(syscall.SIGTERM)
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return 1
}

// stamp FILE: write the wall-clock start time (unix ns) to FILE, exit 0.
func stamp(args []string) int {
	os.WriteFile(args[0], []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
	return 0
}

// spawn-orphan: start a child that exits at once, print its pid, and exit
// without waiting for it, so it is reparented as a zombie.
func spawnOrphan([]string) int {
	p, err := os.StartProcess(os.Args[0], []string{os.Args[0], "exit", "0"}, &os.ProcAttr{Env: os.Environ()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(p.Pid)
	return 0
}

// orphans CODE: make an orphan via spawn-orphan, wait until whoever adopted
// it has reaped it, then exit CODE; exit 99 if it is still a zombie.
func orphans(args []string) int {
	out, err := exec.Command(os.Args[0], "spawn-orphan").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "spawn-orphan:", err)
		return 98
	}
	pid := strings.TrimSpace(string(out))
	if err := testproc.Poll(func() (bool, string) {
		_, err := os.Stat("/proc/" + pid)
		return os.IsNotExist(err), "orphan " + pid + " reaped"
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 99
	}
	n, _ := strconv.Atoi(args[0])
	return n
}

// app returns the argv that makes the test binary play app command name.
func app(name string, args ...string) []string {
	if name == "orphans" {
		testproc.MarkUsed("spawn-orphan", "exit") // run by the orphans app itself
	}
	return testproc.Argv(name, args...)
}

// signalNamed is the signal with short name n ("TERM").
func signalNamed(n string) syscall.Signal {
	s, ok := testproc.SignalByName(n)
	if !ok {
		panic("unknown signal " + n)
	}
	return s
}

// proc is a running envoy-lifecycle.
type proc = testproc.Proc

// bin is the shipped binary, built as the Dockerfile builds it.
func bin(t testing.TB) string { return testproc.Build(t) }

// baseEnv is testproc's child environment without any setting the wrapper
// reads.
func baseEnv() []string {
	var env []string
	for _, kv := range testproc.Env() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "ENVOY_"), strings.HasPrefix(k, "ISTIO_"), strings.HasPrefix(k, "GENERIC_"),
			strings.HasPrefix(k, "NEVER_KILL"), strings.HasPrefix(k, "ALWAYS_KILL"), strings.HasPrefix(k, "QUIT_"),
			strings.HasPrefix(k, "WAIT_FOR"), strings.HasPrefix(k, "START_WITHOUT"), strings.HasPrefix(k, "SCUTTLE_"),
			k == "USE_ISTIO_ENDPOINT", k == "GODEBUG":
			continue
		}
		env = append(env, kv)
	}
	// asyncpreemptoff: the app's own runtime then sends itself no SIGURG, so
	// any SIGURG it reports came from outside.
	return append(env, "GODEBUG=asyncpreemptoff=1", "ENVOY_LIFECYCLE_LOG_LEVEL=debug")
}

// start runs envoy-lifecycle with env added to baseEnv and argv.
func start(t testing.TB, env []string, argv ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(bin(t), argv...), env)
}

// startCmd starts cmd with env added to baseEnv.
func startCmd(t testing.TB, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	cmd.Env = append(baseEnv(), env...)
	return testproc.StartCmd(t, cmd)
}
