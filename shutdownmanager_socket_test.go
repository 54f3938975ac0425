package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	dir := testproc.SharedDir(t)
	files := filepath.Join(dir, "files") // the manager's own, writable by it
	if err := os.Mkdir(files, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(files, testproc.Nobody, testproc.Nobody); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "envoy-lifecycle")
	testproc.CopyExecutable(t, bin(t), exe)
	sock := filepath.Join(dir, "admin.sock")
	e := envoytest.Start(t, envoyfake.Options{AdminSocket: sock})
	if err := os.Chmod(sock, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(exe, "shutdown-manager", "--address", "127.0.0.1", "--port", "0", "--envoy-admin", e.AdminURL(),
		"--ready-file", filepath.Join(files, "ready"), "--state-file", filepath.Join(files, "state"))
	cmd.SysProcAttr = testproc.AsNobody()
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
