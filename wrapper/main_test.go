package wrapper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The test binary plays the app (Go's os/exec exec_test.go): with childEnv
// set, TestMain runs the named command from childCommands instead of the
// tests.
const childEnv = "WRAPPER_TEST_CHILD"

// timeout bounds every wait in the tests; nothing sleeps to synchronise.
const timeout = 15 * time.Second

var childCommands = map[string]func(args []string) int{
	"exit":         cmdExit,
	"hang":         cmdHang,
	"echo-signals": cmdEchoSignals,
	"die-by":       cmdDieBy,
	"spawn":        cmdSpawn,
	"pgid":         cmdPgid,
	"pid1":         cmdPid1,
}

// usedCommands records which child commands the tests ran; one that none
// ran fails the run.
var usedCommands sync.Map

// reaperLog receives the reaper's logs, started by TestMain.
var reaperLog syncBuffer

func TestMain(m *testing.M) {
	if name, ok := os.LookupEnv(childEnv); ok {
		cmd, ok := childCommands[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child command %q\n", name)
			os.Exit(2)
		}
		os.Exit(cmd(os.Args[1:]))
	}

	// Start the reaper with a logger the orphan tests can read.
	startReaper(hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Debug,
		Output:     &reaperLog,
		JSONFormat: true,
	}))

	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.list").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		var unused []string
		for name := range childCommands {
			if _, ok := usedCommands.Load(name); !ok {
				unused = append(unused, name)
			}
		}
		if len(unused) > 0 {
			sort.Strings(unused)
			fmt.Fprintf(os.Stderr, "child commands registered but not used: %q\n", unused)
			code = 1
		}
	}
	os.Exit(code)
}

// appOptions returns Options that run child command name with args.
func appOptions(name string, args ...string) Options {
	usedCommands.Store(name, true)
	return Options{
		Command: os.Args[0],
		Args:    args,
		Env:     childEnviron(name),
	}
}

// childEnviron returns our environment with childEnv set to name.
// os.StartProcess keeps duplicate keys and the child sees the first one, so
// any marker we inherited is dropped.
func childEnviron(name string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, childEnv+"="):
		case strings.HasPrefix(kv, "GORACE="):
			// The race detector sleeps 1s at exit by default; a race
			// build of a child that exits at once would take that long.
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
		default:
			env = append(env, kv)
		}
	}
	return append(env, childEnv+"="+name, "GORACE="+gorace)
}

// Child commands.

func cmdExit(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: exit N")
		return 2
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return n
}

// cmdHang prints "ready" and blocks until killed. It gives up after a
// while so a failed test leaves nothing behind for long.
func cmdHang([]string) int {
	fmt.Println("ready")
	time.Sleep(2 * time.Minute)
	return 2
}

var sigNames = map[syscall.Signal]string{
	syscall.SIGTERM:  "TERM",
	syscall.SIGINT:   "INT",
	syscall.SIGHUP:   "HUP",
	syscall.SIGQUIT:  "QUIT",
	syscall.SIGUSR1:  "USR1",
	syscall.SIGUSR2:  "USR2",
	syscall.SIGWINCH: "WINCH",
	syscall.SIGKILL:  "KILL",
}

func sigByName(name string) (syscall.Signal, bool) {
	for s, n := range sigNames {
		if n == name {
			return s, true
		}
	}
	return 0, false
}

// forwarded are the signals main forwards (STYLE.md §2).
var forwarded = []syscall.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH,
}

// cmdEchoSignals prints "ready", then the name of each forwarded signal as
// it arrives, and exits 0 when stdin closes (dumb-init's print_signals).
func cmdEchoSignals([]string) int {
	ch := make(chan os.Signal, 16)
	sigs := make([]os.Signal, len(forwarded))
	for i, s := range forwarded {
		sigs[i] = s
	}
	signal.Notify(ch, sigs...)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	fmt.Println("ready")
	for {
		select {
		case s := <-ch:
			fmt.Println(sigNames[s.(syscall.Signal)])
		case <-eof:
			return 0
		}
	}
}

// cmdDieBy kills itself with the named signal, so it dies by it.
func cmdDieBy(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: die-by SIGNAL")
		return 2
	}
	s, ok := sigByName(args[0])
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown signal %q\n", args[0])
		return 2
	}
	signal.Reset(s)
	if err := syscall.Kill(os.Getpid(), s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	time.Sleep(time.Minute) // the signal ends this
	return 99
}

// cmdSpawn starts a "hang" grandchild in the same process group, prints the
// grandchild's pid, then exits ("spawn exit") or hangs ("spawn hang").
func cmdSpawn(args []string) int {
	if len(args) != 1 || (args[0] != "exit" && args[0] != "hang") {
		fmt.Fprintln(os.Stderr, "usage: spawn exit|hang")
		return 2
	}
	env := childEnviron("hang")
	// No stdout, so the test sees EOF when this process exits.
	gc, err := os.StartProcess(os.Args[0], []string{os.Args[0]}, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{nil, nil, os.Stderr},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(gc.Pid)
	_ = gc.Release()
	if args[0] == "exit" {
		return 0
	}
	return cmdHang(nil)
}

// cmdPgid prints its process group id and exits 0 when stdin closes.
func cmdPgid([]string) int {
	fmt.Println(syscall.Getpgrp())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// cmdPid1 runs as PID 1 of a new pid namespace (unshare --pid --fork
// --mount-proc). It checks that the reaper, with no subreaper call, gives
// the main child's status and reaps the orphan it leaves.
func cmdPid1([]string) int {
	if err := pid1(); err != nil {
		fmt.Fprintln(os.Stderr, "pid1:", err)
		return 1
	}
	return 0
}

func pid1() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("pid is %d, want 1", os.Getpid())
	}
	var logs syncBuffer
	startReaper(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &logs, JSONFormat: true}))

	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	o := appOptions("spawn", "exit")
	o.Stdout = w
	c, err := New(o)
	if err != nil {
		return err
	}
	err = c.Start()
	w.Close()
	if err != nil {
		return err
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		return fmt.Errorf("cannot read grandchild pid: %w", err)
	}
	gpid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return err
	}
	select {
	case st := <-c.ExitCh():
		if st.Code() != 0 {
			return fmt.Errorf("child: %v, want exit status 0", st)
		}
	case <-time.After(timeout):
		return fmt.Errorf("child did not exit")
	}
	if err := poll(func() (bool, string) {
		_, ppid, err := procStat(gpid)
		return err == nil && ppid == 1, fmt.Sprintf("grandchild %d: ppid %d, %v", gpid, ppid, err)
	}); err != nil {
		return err
	}
	if err := syscall.Kill(gpid, syscall.SIGKILL); err != nil {
		return err
	}
	if err := poll(func() (bool, string) { return noZombies(gpid, 1) }); err != nil {
		return err
	}
	if !logs.reapedOrphan(gpid) {
		return fmt.Errorf("no orphan log for %d in %s", gpid, logs.String())
	}
	return nil
}

// Helpers shared by the tests and the child commands.

// poll calls cond until it holds or timeout passes (tini's busy_wait).
func poll(cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not synchronisation
	}
}

// procStat returns the state and parent pid of pid from /proc.
func procStat(pid int) (state byte, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) S ppid …"; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat: %q", pid, b)
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err
}

// noZombies reports whether pid is gone and no child of parent is a zombie.
func noZombies(pid, parent int) (bool, string) {
	if _, _, err := procStat(pid); err == nil {
		return false, fmt.Sprintf("process %d still exists", pid)
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err.Error()
	}
	var zombies []int
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		state, ppid, err := procStat(p)
		if err == nil && ppid == parent && state == 'Z' {
			zombies = append(zombies, p)
		}
	}
	return len(zombies) == 0, fmt.Sprintf("zombie children of %d: %v", parent, zombies)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// reapedOrphan reports whether the reaper logged reaping orphan pid.
func (b *syncBuffer) reapedOrphan(pid int) bool {
	for _, l := range strings.Split(b.String(), "\n") {
		var m struct {
			Message string  `json:"@message"`
			Pid     float64 `json:"pid"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Message == "reaped orphan" && int(m.Pid) == pid {
			return true
		}
	}
	return false
}
