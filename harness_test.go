package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary plays the app: run with EL_TEST_APP=1 it dispatches its
// arguments to one of the commands below instead of running tests.
const appMarker = "EL_TEST_APP"

var appCommands = map[string]func(args []string) int{
	// exit N: exit with code N.
	"exit": func(args []string) int { n, _ := strconv.Atoi(args[0]); return n },
	// die-by SIG: kill itself with signal SIG.
	"die-by": func(args []string) int {
		sig := signalByName[args[0]]
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Minute) // the signal ends us first
		return 1
	},
	// echo-signals: print "ready", then the name of each signal as it arrives;
	// exit 0 when stdin closes.
	"echo-signals": func(args []string) int {
		ch := make(chan os.Signal, 64)
		sigs := []os.Signal{syscall.SIGURG, syscall.SIGCHLD, syscall.SIGPIPE}
		for _, s := range signalByName {
			sigs = append(sigs, s)
		}
		signal.Notify(ch, sigs...)
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
		fmt.Println("ready")
		for {
			select {
			case s := <-ch:
				fmt.Println(sigName(s.(syscall.Signal)))
			case <-done:
				return 0
			}
		}
	},
	// ignore-term: ignore SIGTERM, print "ready" and block until killed.
	"ignore-term": func(args []string) int {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 1
	},
	// stamp FILE: write the wall-clock start time (unix ns) to FILE, exit 0.
	"stamp": func(args []string) int {
		os.WriteFile(args[0], []byte(strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
		return 0
	},
	// touch FILE then exit 0: proves the app was started.
	"touch": func(args []string) int { os.WriteFile(args[0], nil, 0o644); return 0 },
	// spawn-orphan: start a child that exits at once, print its pid, and
	// exit without waiting for it, so it is reparented as a zombie.
	"spawn-orphan": func(args []string) int {
		p, err := os.StartProcess(os.Args[0], []string{os.Args[0], "exit", "0"}, &os.ProcAttr{Env: os.Environ()})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(p.Pid)
		return 0
	},
	// orphans CODE: make an orphan via spawn-orphan, wait (up to 10s) until
	// it has been reaped by whoever adopted it, then exit CODE; exit 99 if it
	// is still a zombie.
	"orphans": func(args []string) int {
		out, err := exec.Command(os.Args[0], "spawn-orphan").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "spawn-orphan:", err)
			return 98
		}
		pid := strings.TrimSpace(string(out))
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
				n, _ := strconv.Atoi(args[0])
				return n
			}
			time.Sleep(2 * time.Millisecond) // polling /proc inside the app, not synchronising the test
		}
		fmt.Fprintln(os.Stderr, "orphan", pid, "was never reaped")
		return 99
	},
}

var signalByName = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH, "KILL": syscall.SIGKILL,
	"ALRM": syscall.SIGALRM, "CONT": syscall.SIGCONT, "PWR": syscall.SIGPWR, "XCPU": syscall.SIGXCPU,
	"XFSZ": syscall.SIGXFSZ, "VTALRM": syscall.SIGVTALRM, "IO": syscall.SIGIO,
}

func sigName(s syscall.Signal) string {
	for n, v := range signalByName {
		if v == s {
			return n
		}
	}
	switch s {
	case syscall.SIGURG:
		return "URG"
	case syscall.SIGCHLD:
		return "CHLD"
	case syscall.SIGPIPE:
		return "PIPE"
	}
	return s.String()
}

var (
	binPath   string // the built envoy-lifecycle
	usedMu    sync.Mutex
	usedNames = map[string]bool{}
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
	dir, err := os.MkdirTemp("", "envoy-lifecycle-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "envoy-lifecycle")
	// The tags the Dockerfile ships with, so the tests run what users run.
	build := exec.Command("go", "build", "-tags=nethttpomithttp2", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build envoy-lifecycle:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// Like os/exec's tests: an app command no test uses is dead code.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.list").Value.String() == "" && !testing.Short() {
		var unused []string
		for name := range appCommands {
			if !usedNames[name] {
				unused = append(unused, name)
			}
		}
		sort.Strings(unused)
		if len(unused) > 0 && os.Getenv("EL_SKIP_UNUSED_CHECK") == "" {
			fmt.Fprintf(os.Stderr, "app commands never used by a test: %v\n", unused)
			code = 1
		}
	}
	os.Exit(code)
}

// app returns the argv that makes the test binary play app command name.
func app(name string, args ...string) []string {
	usedMu.Lock()
	usedNames[name] = true
	if name == "orphans" {
		usedNames["spawn-orphan"] = true // run by the orphans app itself
	}
	usedMu.Unlock()
	return append([]string{os.Args[0], name}, args...)
}

// proc is a running envoy-lifecycle.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	done   chan struct{}
	status syscall.WaitStatus
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseEnv is the test's environment without any setting the wrapper reads,
// plus the app marker.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "ENVOY_"), strings.HasPrefix(k, "ISTIO_"), strings.HasPrefix(k, "GENERIC_"),
			strings.HasPrefix(k, "NEVER_KILL"), strings.HasPrefix(k, "ALWAYS_KILL"), strings.HasPrefix(k, "QUIT_"),
			strings.HasPrefix(k, "WAIT_FOR"), strings.HasPrefix(k, "START_WITHOUT"), strings.HasPrefix(k, "SCUTTLE_"),
			k == "USE_ISTIO_ENDPOINT":
			continue
		}
		env = append(env, kv)
	}
	// asyncpreemptoff: the app's own runtime then sends itself no SIGURG, so
	// any SIGURG it reports came from outside.
	return append(env, appMarker+"=1", "GODEBUG=asyncpreemptoff=1", "ENVOY_LIFECYCLE_LOG_LEVEL=debug")
}

// start runs envoy-lifecycle with env added to baseEnv and argv.
func start(t testing.TB, env []string, argv ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binPath, argv...), env)
}

func startCmd(t testing.TB, cmd *exec.Cmd, env []string) *proc {
	t.Helper()
	cmd.Env = append(baseEnv(), env...)
	p := &proc{t: t, cmd: cmd, lines: make(chan string, 256), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	// Its own process group, so cleanup can kill the app with the wrapper;
	// WaitDelay so an orphaned app holding stdout cannot block Wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() {
		cmd.Wait()
		p.status = cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("envoy-lifecycle stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// line waits for the next stdout line of the app.
func (p *proc) line(timeout time.Duration) (string, bool) {
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(timeout):
		return "", false
	}
}

// expectLine fails unless the next stdout line is want.
func (p *proc) expectLine(want string) {
	p.t.Helper()
	got, ok := p.line(10 * time.Second)
	if !ok || got != want {
		p.t.Fatalf("stdout line got %q (ok=%v), want %q", got, ok, want)
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("cannot signal envoy-lifecycle: %v", err)
	}
}

// exitCode waits (bounded) for envoy-lifecycle to exit and returns its code.
func (p *proc) exitCode() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("envoy-lifecycle did not exit in 20s; stderr:\n%s", p.stderr.String())
	}
	if p.status.Signaled() {
		p.t.Fatalf("envoy-lifecycle itself died of %v", p.status.Signal())
	}
	return p.status.ExitStatus()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(2 * time.Millisecond):
		}
	}
}
