package testproc

import (
	"io"
	"os"
	"syscall"
	"testing"
)

// Nobody is the uid and gid of the image's user (65532), for tests that
// run a process as someone other than root.
const Nobody = 65532

// AsNobody is the SysProcAttr that runs a child as Nobody; starting it
// needs root.
func AsNobody() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
}

// SharedDir returns a new directory (mode 0755) that another uid can search
// and run programs from, unlike t.TempDir and the go build cache; it is
// removed when the test ends.
func SharedDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "el-shared-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// CopyExecutable copies the program at from to to, mode 0755.
func CopyExecutable(tb testing.TB, from, to string) {
	tb.Helper()
	src, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(dst, src)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
}
