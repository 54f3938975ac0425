package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

func init() {
	testproc.Register("leave-daemon", leaveDaemon)
	testproc.Register("daemon", daemon)
}

// leave-daemon FILE MODE: start "daemon FILE MODE", wait until it is ready,
// and exit 0 without waiting for it.
func leaveDaemon(args []string) int {
	cmd := exec.Command(os.Args[0], append([]string{"daemon"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leave-daemon:", err)
		return 98
	}
	if l, _ := bufio.NewReader(out).ReadString('\n'); l != "ready\n" {
		fmt.Fprintf(os.Stderr, "leave-daemon: daemon said %q\n", l)
		return 99
	}
	return 0
}

// daemon FILE MODE: print "ready"; MODE "term" writes TERM to FILE and exits
// 0 on SIGTERM, MODE "ignore" ignores SIGTERM and waits to be killed.
func daemon(args []string) int {
	ch := make(chan os.Signal, 1)
	if args[1] == "ignore" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(ch, syscall.SIGTERM)
	}
	fmt.Println("ready")
	select {
	case <-ch:
		os.WriteFile(args[0], []byte("TERM"), 0o644)
		return 0
	case <-time.After(2 * time.Minute):
		return 2
	}
}

// Issue 14.15: as PID 1, a daemon the app left behind gets SIGTERM and the
// stop timeout before SIGKILL, instead of the kernel's SIGKILL when PID 1
// exits.
func TestPID1StopsDaemonsGracefully(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		testproc.SkipOrFailInCI(t, "skipped: needs root, for unshare --pid (a PID namespace)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		testproc.SkipOrFailInCI(t, "skipped: unshare not found (install util-linux)")
	}
	testproc.MarkUsed("daemon") // started by leave-daemon
	for _, mode := range []string{"term", "ignore"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "daemon")
			const grace = 500 * time.Millisecond
			argv := append([]string{"--pid", "--fork", "--kill-child", "--", bin(t)}, app("leave-daemon", file, mode)...)
			began := time.Now()
			p := startCmd(t, exec.Command(unshare, argv...), []string{"ENVOY_LIFECYCLE_STOP_TIMEOUT=" + grace.String()})
			if code := p.ExitCode(); code != 0 {
				t.Errorf("exit code got %d, want 0", code)
			}
			took := time.Since(began)
			stderr := p.Stderr.String()
			if !strings.Contains(stderr, "processes left behind by the app; sent SIGTERM") {
				t.Errorf("no SIGTERM to the daemon logged:\n%s", stderr)
			}
			got, _ := os.ReadFile(file)
			switch mode {
			case "term":
				if string(got) != "TERM" || !strings.Contains(stderr, "processes left behind have exited") {
					t.Errorf("daemon file got %q, want TERM, and its exit logged:\n%s", got, stderr)
				}
			case "ignore":
				if !strings.Contains(stderr, "[WARN]  envoy-lifecycle.wrapper: processes left behind did not exit in time; killing them") {
					t.Errorf("no kill after the grace logged:\n%s", stderr)
				}
				if took < grace {
					t.Errorf("wrapper exited after %v, before the %v grace", took, grace)
				}
			}
		})
	}
}
