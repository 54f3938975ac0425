package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

func init() {
	// echo-signals-exit CODE: echo-signals, then exit CODE when stdin closes.
	testproc.Register("echo-signals-exit", func(args []string) int {
		testproc.EchoSignals(echoed...)(nil)
		n, _ := strconv.Atoi(args[0])
		return n
	})
}

// Issue 14.6: the wrapper's stderr is a pipe whose reader has gone, as in
// `(envoy-lifecycle app 2>&1 >/dev/null; echo $?) | head -3`. The wrapper
// used to die of SIGPIPE (141) at its first log line, orphaning the app and
// leaving Envoy running. It must still drain, quit Envoy and return the
// app's code, and SIGPIPE must never reach the app (echo-signals-exit would
// print PIPE).
func TestBrokenStderrPipe(t *testing.T) {
	t.Parallel()
	for _, term := range []bool{false, true} {
		name := "app exits"
		if term {
			name = "SIGTERM"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close() // the reader is gone before the wrapper writes a line
			e := envoytest.Start(t, envoyfake.Options{})
			cmd := exec.Command(bin(t), app("echo-signals-exit", "5")...)
			cmd.Stderr = w
			p := startCmd(t, cmd, drainEnv(e))
			w.Close()
			p.ExpectLine("ready")
			if term {
				p.Signal(syscall.SIGTERM)
				p.ExpectLine("TERM")
			}
			p.Stdin.Close()
			st := p.Wait()
			if st.Signaled() || st.ExitStatus() != 5 {
				t.Errorf("wrapper ended with %v (exit %d, signaled %v), want exit 5", st, st.ExitStatus(), st.Signaled())
			}
			for l, ok := p.Line(testproc.Timeout); ok; l, ok = p.Line(testproc.Timeout) {
				t.Errorf("app printed %q after its last signal; SIGPIPE must not reach it", l)
			}
			reqs := e.Requests()
			for _, path := range []string{"/healthcheck/fail", "/drain_listeners", "/quitquitquit"} {
				if envoytest.Posts(reqs, path) != 1 {
					t.Errorf("the Envoy fake got %d POST %s, want 1; calls: %s", envoytest.Posts(reqs, path), path, strings.Join(order(reqs), ", "))
				}
			}
		})
	}
}
