package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

// Issue 10: the manager, run as the image's user (65532) beside an Envoy
// whose admin socket is root's with mode 0755, says at start-up that it
// cannot connect, and why, instead of failing the first drain.
func TestManagerSaysSocketNotConnectable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		testproc.SkipOrFailInCI(t, "skipped: needs root, to run the manager as another uid")
	}
	const nobody = 65532
	dir, err := os.MkdirTemp("", "el-socket-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	files := filepath.Join(dir, "files") // the manager's own, writable by it
	for _, err := range []error{os.Chmod(dir, 0o755), os.Mkdir(files, 0o755), os.Chown(files, nobody, nobody)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "envoy-lifecycle")
	copyExecutable(t, bin(t), exe)
	sock := filepath.Join(dir, "admin.sock")
	e := envoytest.Start(t, envoyfake.Options{AdminSocket: sock})
	if err := os.Chmod(sock, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(exe, "shutdown-manager", "--address", "127.0.0.1", "--port", "0", "--envoy-admin", e.AdminURL(),
		"--ready-file", filepath.Join(files, "ready"), "--state-file", filepath.Join(files, "state"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	p := startCmd(t, cmd, mgrEnv())
	const want = "admin socket not connectable; drains will fail"
	testproc.WaitFor(t, "the manager's start-up line about the socket", func() bool {
		return strings.Contains(p.Stderr.String(), want) || testproc.IsClosed(p.Done())
	})
	logs := p.Stderr.String()
	for _, w := range []string{want, sock, "uid 65532 gid 65532", "(0755) owned by uid 0 gid 0", "pipe.mode"} {
		if !strings.Contains(logs, w) {
			t.Errorf("manager's logs lack %q:\n%s", w, logs)
		}
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
