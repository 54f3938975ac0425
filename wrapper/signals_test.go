//go:build linux

package wrapper

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"envoy-lifecycle/internal/testproc"
)

// The signal policy is tested in a process of its own ("policy"), since
// Catch sets dispositions for the life of the process. It runs the
// "echo-all" app and prints, one line per event on the stdout it shares
// with the app:
//
//	wrapper ready <app pid> <ignored at start, comma-separated>
//	wrapper got <n>            a signal reached Catch's channel
//	app ready <ignored at start>
//	app <n>                    the app received signal n
//	wrapper exit <code> fg=<b> the app exited; b: the wrapper's group owns
//	                           its terminal again
func init() {
	childCommands["policy"] = cmdPolicy
	childCommands["echo-all"] = testproc.EchoAll("app ")
	childCommands["ignore-exec"] = testproc.IgnoreExec
	childCommands["session"] = testproc.Session
}

// cmdPolicy is a minimal wrapper: Catch, start echo-all (in its own group
// with "setpgid"), forward what Policy and TerminalDelivered say to forward,
// exit with the app's code.
func cmdPolicy(args []string) int {
	sigs := make(chan os.Signal, 64)
	p := Catch(sigs)
	o := appOptions("echo-all")
	o.Setpgid = len(args) > 0 && args[0] == "setpgid"
	c, err := New(o)
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "policy:", err)
		return 2
	}
	ign := map[syscall.Signal]bool{}
	for _, s := range p.IgnoredAtStart() {
		ign[s] = true
	}
	fmt.Printf("wrapper ready %d %s\n", c.Pid(), testproc.SigList(ign))
	for {
		select {
		case st := <-c.ExitCh():
			fg, err := foreground(os.Stdin.Fd())
			fmt.Printf("wrapper exit %d fg=%v\n", st.Code(), err == nil && fg == syscall.Getpgrp())
			return st.Code()
		case sig := <-sigs:
			fmt.Printf("wrapper got %d\n", sig.(syscall.Signal))
			if p.Action(sig) == Forward && !c.TerminalDelivered(sig) {
				if err := c.Signal(sig); err != nil {
					fmt.Fprintln(os.Stderr, "policy:", err)
				}
			}
		}
	}
}

// policyProc is a running "policy" wrapper and its output.
type policyProc struct {
	*app
	appPid  int
	ignored string // the wrapper's ignored-at-start list
}

// policyOptions runs "policy" in a group of its own: were the test run from
// a terminal, the wrapper would otherwise share its foreground group and
// take every SIGINT for the terminal's (TerminalDelivered).
func policyOptions() Options {
	o := appOptions("policy")
	testproc.MarkUsed("echo-all") // policy's app
	o.Setpgid = true
	return o
}

func startPolicy(t *testing.T, o Options) *policyProc {
	t.Helper()
	a := startApp(t, o)
	return readyPolicy(t, a, a.out)
}

// readyPolicy waits for both ready lines.
func readyPolicy(t *testing.T, a *app, out *lines) *policyProc {
	t.Helper()
	p := &policyProc{app: a}
	for gotApp := false; p.appPid == 0 || !gotApp; {
		f := strings.Fields(out.next(t))
		switch {
		case len(f) == 4 && f[0] == "wrapper" && f[1] == "ready":
			p.appPid, _ = strconv.Atoi(f[2])
			p.ignored = f[3]
		case len(f) == 3 && f[0] == "app" && f[1] == "ready":
			gotApp = true
		default:
			t.Fatalf("got %q before the ready lines", strings.Join(f, " "))
		}
	}
	return p
}

// expect reads lines until it has seen each of want once, in any order;
// any other line fails the test.
func expect(t *testing.T, out *lines, what string, want ...string) {
	t.Helper()
	left := map[string]int{}
	for _, w := range want {
		left[w]++
	}
	for n := len(want); n > 0; n-- {
		got := out.next(t)
		if left[got] == 0 {
			t.Fatalf("%s: got %q, want one of %q", what, got, want)
		}
		left[got]--
	}
}

func kill(t *testing.T, pid int, s syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(pid, s); err != nil {
		t.Fatalf("kill(%d, %d): %v", pid, s, err)
	}
}

// TestSignalPolicy sends every signal 1..64 to a wrapper with kill(2) and
// checks that what happens is what SignalTable documents: forwarded ones
// reach the app exactly once, and no other signal reaches the app or ends
// the wrapper (SIGKILL aside, sent last).
func TestSignalPolicy(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			o := policyOptions()
			if setpgid {
				o.Args = append(o.Args, "setpgid")
			}
			p := startPolicy(t, o)
			if p.ignored != "-" {
				t.Skipf("the test process has signals ignored (%s); TestIgnoredAtStart covers that", p.ignored)
			}
			w := p.Pid()
			marker := func(what string) {
				t.Helper()
				// A forwarded signal after the one under test: had that one
				// reached the app, its line would show up before the end.
				kill(t, w, syscall.SIGUSR1)
				expect(t, p.out, what+", then SIGUSR1", "wrapper got 10", "app 10")
			}
			for _, info := range SignalTable() {
				s := info.Signal
				what := fmt.Sprintf("%s (%v)", info.Name, info.Action)
				switch info.Action {
				case Forward:
					kill(t, w, s)
					n := strconv.Itoa(int(s))
					expect(t, p.out, what, "wrapper got "+n, "app "+n)
				case Own, Dropped, Reserved:
					kill(t, w, s)
					marker(what)
				case JobControl, Uncatchable:
					if s == syscall.SIGKILL {
						continue // last
					}
					kill(t, w, s)
					if err := testproc.Poll(func() (bool, string) {
						state, _, err := testproc.ProcStat(w)
						return err == nil && state == 'T', fmt.Sprintf("wrapper state %q, want T (stopped)", state)
					}); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					kill(t, w, syscall.SIGCONT)
					expect(t, p.out, what+", then SIGCONT", "wrapper got 18", "app 18")
				default:
					t.Fatalf("%s: no test for this action", what)
				}
			}
			kill(t, w, syscall.SIGKILL)
			if st, _ := killedBy(p.wait(t)); st != syscall.SIGKILL {
				t.Errorf("after SIGKILL the wrapper got %v, want killed by SIGKILL", st)
			}
			// The orphaned app ends at EOF.
			p.in.Close()
			if rest := p.out.rest(t); len(rest) > 0 {
				t.Errorf("extra output %q: a signal reached the app twice or when it should not", rest)
			}
		})
	}
}

// TestIgnoredAtStart starts the wrapper with signals ignored, as nohup,
// `trap "" INT` and a shell's `cmd &` do: they stay ignored for the wrapper
// and the app, and are not forwarded.
func TestIgnoredAtStart(t *testing.T) {
	t.Parallel()
	// HUP (nohup), INT (trap, cmd &), CONT and TSTP (which Go leaves alone
	// until asked), 34 (reserved).
	ign := map[syscall.Signal]bool{syscall.SIGHUP: true, syscall.SIGINT: true, syscall.SIGCONT: true, syscall.SIGTSTP: true, 34: true}
	policyOptions() // marks policy's commands used
	o := appOptions("ignore-exec", append([]string{testproc.SigList(ign)}, testproc.Argv("policy")...)...)
	o.Setpgid = true
	p := startPolicy(t, o)
	inherited := testproc.InheritedReserved(t)
	want := map[syscall.Signal]bool{}
	for s := range ign {
		want[s] = true
	}
	for s := range inherited {
		if s != 33 { // the Go runtime's own (SIGSETXID): never seen as ignored
			want[s] = true
		}
	}
	if want := testproc.SigList(want); p.ignored != want {
		t.Errorf("wrapper: ignored at start %s, want %s", p.ignored, want)
	}
	appIgn, err := testproc.ProcSigIgn(p.appPid)
	if err != nil {
		t.Fatal(err)
	}
	for s := range ign {
		if !appIgn[s] {
			t.Errorf("app: signal %d not ignored; /proc SigIgn has %v", s, appIgn)
		}
		kill(t, p.Pid(), s)
	}
	// Reserved signals are ignored by the wrapper, not by the app, unless
	// they were ignored when the wrapper started.
	if appIgn[32] && !inherited[32] {
		t.Error("app: signal 32 ignored, want its default")
	}
	kill(t, p.Pid(), syscall.SIGUSR1)
	expect(t, p.out, "ignored signals, then SIGUSR1", "wrapper got 10", "app 10")
	if state, _, err := testproc.ProcStat(p.Pid()); err != nil || state == 'T' {
		t.Fatalf("wrapper state %q, %v: stopped or gone", state, err)
	}
	p.in.Close()
	expect(t, p.out, "EOF", "wrapper exit 0 fg=false")
	if st := p.wait(t); st.Code() != 0 {
		t.Errorf("got %v, want exit status 0", st)
	}
	if rest := p.out.rest(t); len(rest) > 0 {
		t.Errorf("extra output %q", rest)
	}
}

// TestTerminal runs the wrapper as the session leader of a pseudo-terminal,
// as `docker run -t`, ssh or script(1) do, in both process-group modes: the
// app can read the terminal (no SIGTTIN stop in its own group), Ctrl-C
// reaches it exactly once, and the wrapper owns the terminal again after.
func TestTerminal(t *testing.T) {
	t.Parallel()
	for _, setpgid := range []bool{false, true} {
		t.Run(fmt.Sprintf("setpgid=%v", setpgid), func(t *testing.T) {
			t.Parallel()
			master, tty := testproc.OpenPTY(t)
			policyOptions() // marks policy's commands used
			argv := testproc.Argv("policy")
			if setpgid {
				argv = append(argv, "setpgid")
			}
			o := appOptions("session", argv...)
			o.Stdin, o.Stdout, o.Stderr = tty, tty, tty
			c, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = c.Kill()
				<-c.ExitCh()
			})
			out := newLines(master)
			out = trimCR(out)
			p := readyPolicy(t, &app{Child: c}, out)
			pgid, err := syscall.Getpgid(p.appPid)
			if err != nil {
				t.Fatal(err)
			}
			if fg, err := testproc.Foreground(master); err != nil || fg != pgid {
				t.Errorf("terminal foreground got %d, %v, want the app's group %d", fg, err, pgid)
			}

			write := func(s string) {
				t.Helper()
				if _, err := master.WriteString(s); err != nil {
					t.Fatal(err)
				}
			}
			write("hello\n")
			expect(t, out, "a line typed", "app read hello")

			write("\x03") // Ctrl-C
			if setpgid {
				// The app's group owns the terminal: the wrapper sees nothing.
				expect(t, out, "Ctrl-C", "app 2")
			} else {
				// Both get it from the terminal; the wrapper must not forward it.
				expect(t, out, "Ctrl-C", "wrapper got 2", "app 2")
			}
			// A kill(2) of the wrapper is forwarded; a second INT from the
			// Ctrl-C would show up before or instead of it.
			kill(t, c.Pid(), syscall.SIGUSR1)
			expect(t, out, "SIGUSR1 after Ctrl-C", "wrapper got 10", "app 10")

			// In raw mode (ISIG off) the terminal sends no SIGINT, so one the
			// wrapper gets came from kill(2) and is forwarded.
			var tio syscall.Termios
			if err := testproc.Ioctl(tty, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
				t.Fatal(err)
			}
			tio.Lflag &^= syscall.ISIG
			if err := testproc.Ioctl(tty, syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
				t.Fatal(err)
			}
			kill(t, c.Pid(), syscall.SIGINT)
			expect(t, out, "kill -INT in raw mode", "wrapper got 2", "app 2")

			tty.Close()   // the session has its own; EOF on master after it ends
			write("\x04") // Ctrl-D: EOF for the app's read
			expect(t, out, "Ctrl-D", "wrapper exit 0 fg=true")
			if st := waitStatus(t, c); st.Code() != 0 {
				t.Errorf("got %v, want exit status 0", st)
			}
		})
	}
}

// trimCR strips the carriage returns a terminal adds to each line.
func trimCR(in *lines) *lines {
	out := &lines{ch: make(chan string, 64)}
	go func() {
		defer close(out.ch)
		for l := range in.ch {
			out.ch <- strings.TrimRight(l, "\r")
		}
	}()
	return out
}

// TestSignalTableStatic checks the table's shape: every signal once, a
// reason for every exception.
func TestSignalTableStatic(t *testing.T) {
	t.Parallel()
	tab := SignalTable()
	if len(tab) != NumSignals {
		t.Fatalf("SignalTable has %d rows, want %d", len(tab), NumSignals)
	}
	for i, info := range tab {
		if int(info.Signal) != i+1 {
			t.Errorf("row %d is signal %d", i, info.Signal)
		}
		if info.Action != Forward && info.Why == "" {
			t.Errorf("%s: %v without a reason", info.Name, info.Action)
		}
		if info.Action == IgnoredAtStart {
			t.Errorf("%s: IgnoredAtStart is decided at run time, not in the table", info.Name)
		}
		if info.Action == Forward && !info.Default.Ends() {
			if s := info.Signal; s != syscall.SIGCONT && s != syscall.SIGWINCH {
				t.Errorf("%s: forwarded, default %v", info.Name, info.Default)
			}
		}
	}
}
