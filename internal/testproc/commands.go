package testproc

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Child command bodies that several packages register under their own
// names. Each package registers only the ones its tests run.

// Exit is "exit N": exit with code N.
func Exit(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: exit N")
		return 2
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "exit:", err)
		return 2
	}
	return n
}

// Hang prints "ready" and blocks until killed. It gives up after a while,
// so a failed test leaves nothing behind for long.
func Hang([]string) int {
	fmt.Println("ready")
	time.Sleep(2 * time.Minute)
	return 2
}

// DieBy is "die-by SIG": kill itself with signal SIG (TERM, KILL…), so it
// dies by it.
func DieBy(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: die-by SIGNAL")
		return 2
	}
	s, ok := SignalByName(args[0])
	if !ok {
		fmt.Fprintf(os.Stderr, "die-by: unknown signal %q\n", args[0])
		return 2
	}
	signal.Reset(s)
	if err := syscall.Kill(os.Getpid(), s); err != nil {
		fmt.Fprintln(os.Stderr, "die-by:", err)
		return 2
	}
	time.Sleep(time.Minute) // the signal ends this first
	return 99
}

// EchoSignals returns a command that prints "ready", then the name of each
// of sigs as it arrives (dumb-init's print_signals), and exits 0 when stdin
// closes.
func EchoSignals(sigs ...syscall.Signal) func([]string) int {
	return func([]string) int {
		ch := make(chan os.Signal, 64)
		for _, s := range sigs {
			signal.Notify(ch, s)
		}
		eof := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
		fmt.Println("ready")
		for {
			select {
			case s := <-ch:
				fmt.Println(SignalName(s.(syscall.Signal)))
			case <-eof:
				return 0
			}
		}
	}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGHUP: "HUP", syscall.SIGQUIT: "QUIT",
	syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGWINCH: "WINCH", syscall.SIGKILL: "KILL",
	syscall.SIGALRM: "ALRM", syscall.SIGCONT: "CONT", syscall.SIGPWR: "PWR", syscall.SIGXCPU: "XCPU",
	syscall.SIGXFSZ: "XFSZ", syscall.SIGVTALRM: "VTALRM", syscall.SIGIO: "IO", syscall.SIGURG: "URG",
	syscall.SIGCHLD: "CHLD", syscall.SIGPIPE: "PIPE", syscall.SIGTSTP: "TSTP", syscall.SIGTTIN: "TTIN",
	syscall.SIGTTOU: "TTOU", syscall.SIGSTOP: "STOP",
}

// SignalName is the short name of s ("TERM"), or its description if it has
// none here.
func SignalName(s syscall.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	return s.String()
}

// SignalByName is the signal with short name n ("TERM").
func SignalByName(n string) (syscall.Signal, bool) {
	for s, name := range signalNames {
		if name == n {
			return s, true
		}
	}
	return 0, false
}
