package wrapper

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/internal/testproc"
)

// timeout bounds every wait in the tests; nothing sleeps to synchronise.
const timeout = testproc.Timeout

// childCommands are the commands the test binary plays as the app
// (testproc); TestMain registers them.
var childCommands = map[string]func(args []string) int{
	"exit":         testproc.Exit,
	"hang":         testproc.Hang,
	"echo-signals": testproc.EchoSignals(forwarded...),
	"die-by":       testproc.DieBy,
	"spawn":        cmdSpawn,
	"pgid":         cmdPgid,
	"pid1":         cmdPid1,
}

// reaperLog receives the reaper's logs, started by TestMain.
var reaperLog testproc.Buffer

func TestMain(m *testing.M) {
	testproc.RegisterAll(childCommands)
	testproc.Dispatch()

	// Start the reaper with a logger the orphan tests can read.
	startReaper(hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Debug,
		Output:     &reaperLog,
		JSONFormat: true,
	}))
	os.Exit(testproc.Run(m))
}

// appOptions returns Options that run child command name with args.
func appOptions(name string, args ...string) Options {
	argv := testproc.Argv(name, args...)
	return Options{Command: argv[0], Args: argv[1:], Env: testproc.Env()}
}

// forwarded are the signals main forwards (STYLE.md §2).
var forwarded = []syscall.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH,
}

// cmdSpawn starts a "hang" grandchild in the same process group, prints the
// grandchild's pid, then exits ("spawn exit") or hangs ("spawn hang").
func cmdSpawn(args []string) int {
	if len(args) != 1 || (args[0] != "exit" && args[0] != "hang") {
		fmt.Fprintln(os.Stderr, "usage: spawn exit|hang")
		return 2
	}
	argv := testproc.Argv("hang")
	// No stdout, so the test sees EOF when this process exits.
	gc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Env:   testproc.Env(),
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
	return testproc.Hang(nil)
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
	var logs testproc.Buffer
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
	if err := testproc.Poll(func() (bool, string) {
		_, ppid, err := testproc.ProcStat(gpid)
		return err == nil && ppid == 1, fmt.Sprintf("grandchild %d: ppid %d, %v", gpid, ppid, err)
	}); err != nil {
		return err
	}
	if err := syscall.Kill(gpid, syscall.SIGKILL); err != nil {
		return err
	}
	if err := testproc.Poll(func() (bool, string) { return testproc.NoZombies(gpid, 1) }); err != nil {
		return err
	}
	// The zombie leaves /proc inside wait4, a moment before the reaper
	// logs it, so wait for the log line rather than read it once.
	return testproc.Poll(func() (bool, string) {
		return reapedOrphan(logs.String(), gpid), fmt.Sprintf("no orphan log for %d in %s", gpid, logs.String())
	})
}

// reapedOrphan reports whether the reaper's JSON log says it reaped orphan
// pid.
func reapedOrphan(log string, pid int) bool {
	for _, l := range strings.Split(log, "\n") {
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
