package wrapper

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// Signal handlers as the kernel knows them.
const (
	sigDFL = 0
	sigIGN = 1
)

// kernelSigaction is the kernel's struct sigaction on the architectures with
// sa_restorer (amd64, arm64, 386, arm); only the handler is ever set.
type kernelSigaction struct {
	handler  uintptr
	flags    uintptr
	restorer uintptr
	mask     uint64
}

// disposition returns s's handler as the kernel has it: sigDFL, sigIGN or
// the address of a handler.
func disposition(s syscall.Signal) (uintptr, error) {
	var old kernelSigaction
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(s), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return 0, os.NewSyscallError("rt_sigaction", e)
	}
	return old.handler, nil
}

// setDisposition sets s to sigDFL or sigIGN, behind the Go runtime's back:
// only for signals the runtime never handles (reserved).
func setDisposition(s syscall.Signal, h uintptr) error {
	act := kernelSigaction{handler: h}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
		return os.NewSyscallError("rt_sigaction", e)
	}
	return nil
}

// foreground returns the foreground process group of the terminal fd, which
// must be the caller's controlling terminal (ENOTTY otherwise).
func foreground(fd uintptr) (int, error) {
	var pgrp int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp))); e != 0 {
		return 0, os.NewSyscallError("ioctl(TIOCGPGRP)", e)
	}
	return int(pgrp), nil
}

// setForeground makes pgrp the foreground process group of the terminal fd,
// as tcsetpgrp does. From a background group the kernel would stop us with
// SIGTTOU unless it is blocked, so it is, in this thread only.
func setForeground(fd uintptr, pgrp int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	block := uint64(1) << (syscall.SIGTTOU - 1)
	var old uint64
	if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0 /* SIG_BLOCK */, uintptr(unsafe.Pointer(&block)), uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
		return os.NewSyscallError("rt_sigprocmask", e)
	}
	defer syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 2 /* SIG_SETMASK */, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	p := int32(pgrp)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPGRP, uintptr(unsafe.Pointer(&p))); e != 0 {
		return os.NewSyscallError("ioctl(TIOCSPGRP)", e)
	}
	return nil
}

// getsid returns the caller's session id.
func getsid() (int, error) {
	sid, _, e := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	if e != 0 {
		return 0, os.NewSyscallError("getsid", e)
	}
	return int(sid), nil
}

// keySignals reports whether the terminal fd turns Ctrl-C and Ctrl-\ into
// signals (ISIG).
func keySignals(fd uintptr) bool {
	var t syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
		return true // cannot tell: assume the usual cooked mode
	}
	return t.Lflag&syscall.ISIG != 0
}
