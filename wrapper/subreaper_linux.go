package wrapper

import (
	"os"
	"syscall"
	"unsafe"
)

// From linux/prctl.h.
const (
	prSetChildSubreaper = 36
	prGetChildSubreaper = 37
)

// SetSubreaper makes the calling process a child subreaper
// (PR_SET_CHILD_SUBREAPER, Linux 3.4): orphaned descendants are reparented to
// it instead of to PID 1, and the reaper reaps them. It is opt-in, like tini
// -s, and lasts for the life of the process.
func SetSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return &os.SyscallError{Syscall: "prctl(PR_SET_CHILD_SUBREAPER)", Err: errno}
	}
	return nil
}

// IsSubreaper reports whether the calling process is a child subreaper
// (PR_GET_CHILD_SUBREAPER).
func IsSubreaper() (bool, error) {
	var v int32
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetChildSubreaper, uintptr(unsafe.Pointer(&v)), 0); errno != 0 {
		return false, &os.SyscallError{Syscall: "prctl(PR_GET_CHILD_SUBREAPER)", Err: errno}
	}
	return v != 0, nil
}
