package testproc

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// Child command bodies for the signal-policy tests (Linux: they read /proc
// and use pseudo-terminals).

// EchoAll returns a command that prints prefix+"ready <ignored>" (the
// signals it inherited ignored, see SigList), then prefix+"<n>" for every
// signal n it receives and prefix+"read <line>" for every line of stdin;
// it exits 0 at EOF. Signals it inherited ignored stay ignored: Go's Notify
// would take them over. SIGURG, which the Go runtime sends itself, is not
// printed.
func EchoAll(prefix string) func([]string) int {
	return func([]string) int {
		ignored, err := ProcSigIgn(os.Getpid())
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo-all:", err)
			return 2
		}
		ch := make(chan os.Signal, 64)
		for s := syscall.Signal(1); s <= 64; s++ {
			if !ignored[s] {
				signal.Notify(ch, s)
			}
		}
		fmt.Printf("%sready %s\n", prefix, SigList(ignored))
		eof := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				fmt.Printf("%sread %s\n", prefix, sc.Text())
			}
			close(eof)
		}()
		for {
			select {
			case s := <-ch:
				if s != syscall.SIGURG {
					fmt.Printf("%s%d\n", prefix, s.(syscall.Signal))
				}
			case <-eof:
				return 0
			}
		}
	}
}

// IgnoreExec is "ignore-exec SIGS PATH ARGS...": set the signals SIGS
// (comma-separated numbers) to SIG_IGN, then exec PATH with ARGS in this
// environment, as `trap "" INT; exec` and nohup do.
func IgnoreExec(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ignore-exec SIGS PATH ARGS...")
		return 2
	}
	for _, f := range strings.Split(args[0], ",") {
		n, err := strconv.Atoi(f)
		if err == nil {
			err = ignore(syscall.Signal(n))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ignore-exec:", err)
			return 2
		}
	}
	err := syscall.Exec(args[1], args[1:], os.Environ())
	fmt.Fprintln(os.Stderr, "ignore-exec:", err)
	return 2
}

// ignore sets s to SIG_IGN with rt_sigaction itself: os/signal cannot for
// the C library's real-time signals.
func ignore(s syscall.Signal) error {
	// The kernel's struct sigaction: handler, flags, restorer, mask.
	act := [4]uintptr{1 /* SIG_IGN */}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
		return os.NewSyscallError("rt_sigaction", e)
	}
	return nil
}

// Session is "session PATH ARGS...": become a session leader with stdin, a
// terminal, as controlling terminal (as a terminal emulator, sshd or
// docker run -t do), then exec PATH with ARGS in this environment.
func Session(args []string) int {
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: session PATH ARGS...")
		return 2
	}
	if _, err := syscall.Setsid(); err != nil {
		fmt.Fprintln(os.Stderr, "session: setsid:", err)
		return 2
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCSCTTY, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "session: TIOCSCTTY:", e)
		return 2
	}
	err := syscall.Exec(args[0], args, os.Environ())
	fmt.Fprintln(os.Stderr, "session:", err)
	return 2
}

// ProcSigIgn returns the signals /proc/PID/status lists as ignored.
func ProcSigIgn(pid int) (map[syscall.Signal]bool, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("bad SigIgn %q: %w", v, err)
			}
			ign := make(map[syscall.Signal]bool)
			for s := syscall.Signal(1); s <= 64; s++ {
				if mask&(1<<(s-1)) != 0 {
					ign[s] = true
				}
			}
			return ign, nil
		}
	}
	return nil, fmt.Errorf("no SigIgn in /proc/%d/status", pid)
}

// SigList is the signals of set as sorted comma-separated numbers, "-" for
// none.
func SigList(set map[syscall.Signal]bool) string {
	var f []string
	for s := syscall.Signal(1); s <= 64; s++ {
		if set[s] {
			f = append(f, strconv.Itoa(int(s)))
		}
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, ",")
}

// OpenPTY returns a new pseudo-terminal's master and its terminal, with echo
// off so the master reads only what processes write. Cleanup closes both.
func OpenPTY(tb testing.TB) (master, tty *os.File) {
	tb.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		SkipOrFailInCI(tb, fmt.Sprintf("no pseudo-terminals: %v", err))
	}
	tb.Cleanup(func() { master.Close() })
	var unlock int32
	var n uint32
	if err := Ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		tb.Fatal(err)
	}
	if err := Ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		tb.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tty.Close() })
	var tio syscall.Termios
	if err := Ioctl(tty, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		tb.Fatal(err)
	}
	tio.Lflag &^= syscall.ECHO
	if err := Ioctl(tty, syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
		tb.Fatal(err)
	}
	return master, tty
}

// Ioctl is ioctl(2) on f.
func Ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(arg)); e != 0 {
		return os.NewSyscallError("ioctl", e)
	}
	return nil
}

// Foreground is the foreground process group of terminal f.
func Foreground(f *os.File) (int, error) {
	var pgrp int32
	err := Ioctl(f, syscall.TIOCGPGRP, unsafe.Pointer(&pgrp))
	return int(pgrp), err
}

// InheritedReserved returns the C library's real-time signals (32-34) that
// this test process got ignored from its parent and so passes on ignored to
// every child: GNU make, which runs `make test`, leaves 32 and 33 ignored.
// The Go runtime never takes these over, so a wrapper started from here
// rightly keeps them ignored.
func InheritedReserved(tb testing.TB) map[syscall.Signal]bool {
	tb.Helper()
	self, err := ProcSigIgn(os.Getpid())
	if err != nil {
		tb.Fatal(err)
	}
	out := map[syscall.Signal]bool{}
	for s := syscall.Signal(32); s <= 34; s++ {
		if self[s] {
			out[s] = true
		}
	}
	return out
}
