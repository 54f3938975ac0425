package wrapper

import (
	"syscall"
	"testing"
)

// Wait statuses as the kernel encodes them.
func exited(n int) syscall.WaitStatus              { return syscall.WaitStatus(n << 8) }
func signaled(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }
func stopped(s syscall.Signal) syscall.WaitStatus  { return syscall.WaitStatus(int(s)<<8 | 0x7f) }

const (
	coreDumped = 0x80
	continued  = syscall.WaitStatus(0xffff)
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ws   syscall.WaitStatus
		want int
	}{
		{"exit 0", exited(0), 0},
		{"exit 1", exited(1), 1},
		{"exit 2", exited(2), 2},
		{"exit 126", exited(126), 126},
		{"exit 127", exited(127), 127},
		{"exit 128", exited(128), 128},
		{"exit 255", exited(255), 255},
		{"SIGHUP", signaled(syscall.SIGHUP), 129},
		{"SIGINT", signaled(syscall.SIGINT), 130},
		{"SIGQUIT", signaled(syscall.SIGQUIT), 131},
		{"SIGKILL", signaled(syscall.SIGKILL), 137},
		{"SIGSEGV core dumped", signaled(syscall.SIGSEGV) | coreDumped, 139},
		{"SIGTERM", signaled(syscall.SIGTERM), 143},
		{"signal 64", signaled(64), 192},
		{"stopped SIGTSTP", stopped(syscall.SIGTSTP), 148},
		{"stopped SIGSTOP", stopped(syscall.SIGSTOP), 147},
		{"continued", continued, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExitCode(tc.ws); got != tc.want {
				t.Errorf("ExitCode(%#x) got %d, want %d", uint32(tc.ws), got, tc.want)
			}
			if got := (Status{WaitStatus: tc.ws}).Code(); got != tc.want {
				t.Errorf("Code got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		ws         syscall.WaitStatus
		wantString string
		wantSignal syscall.Signal // 0: none
	}{
		{"exit 0", exited(0), "exit status 0", 0},
		{"exit 3", exited(3), "exit status 3", 0},
		{"SIGTERM", signaled(syscall.SIGTERM), "killed by signal terminated", syscall.SIGTERM},
		{"SIGKILL", signaled(syscall.SIGKILL), "killed by signal killed", syscall.SIGKILL},
		{"core dumped", signaled(syscall.SIGSEGV) | coreDumped, "killed by signal segmentation fault (core dumped)", syscall.SIGSEGV},
		{"stopped", stopped(syscall.SIGSTOP), "stopped by signal stopped (signal)", 0},
		{"continued", continued, "continued", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := Status{WaitStatus: tc.ws}
			if got := st.String(); got != tc.wantString {
				t.Errorf("String got %q, want %q", got, tc.wantString)
			}
			s, ok := killedBy(st)
			if ok != (tc.wantSignal != 0) || s != tc.wantSignal {
				t.Errorf("Signal got %v, %v, want %v", s, ok, tc.wantSignal)
			}
		})
	}
}

// killedBy returns the signal that killed the child, and false if it exited
// on its own.
func killedBy(st Status) (syscall.Signal, bool) {
	if st.WaitStatus.Signaled() {
		return st.WaitStatus.Signal(), true
	}
	return 0, false
}
