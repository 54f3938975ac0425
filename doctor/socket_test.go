package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

func TestMain(m *testing.M) {
	// report ADMIN: print doctor's report for that admin.
	testproc.Register("report", func(args []string) int {
		ctx, cancel := context.WithTimeout(context.Background(), testproc.Timeout)
		defer cancel()
		Print(os.Stdout, Run(ctx, Settings{AdminAPI: args[0], RequestTimeout: time.Second, Selector: envoy.DefaultConnSelector()}))
		return 0
	})
	testproc.Main(m)
}

// Issue 10: Envoy creates its admin socket as root, mode 0755, and the
// shutdown manager's user cannot connect to it. Doctor, run as that user,
// names the socket, the uid, the socket's mode and owner, and the fix.
func TestSocketNotConnectable(t *testing.T) {
	t.Parallel()
	argv := testproc.Argv("report") // marked used even when skipped
	if os.Geteuid() != 0 {
		testproc.SkipOrFailInCI(t, "skipped: needs root, to run a check as another uid")
	}
	// A directory uid 65532 can search and run the test binary from.
	dir := testproc.SharedDir(t)
	exe := filepath.Join(dir, "doctor.test")
	testproc.CopyExecutable(t, argv[0], exe)
	sock := filepath.Join(dir, "admin.sock")
	e := envoytest.Start(t, envoyfake.Options{AdminSocket: sock})

	report := func(mode os.FileMode) string {
		t.Helper()
		if err := os.Chmod(sock, mode); err != nil {
			t.Fatal(err)
		}
		var out testproc.Buffer
		cmd := exec.Command(exe, append(argv[1:], e.AdminURL())...)
		cmd.Env = testproc.Env()
		cmd.Stdout = &out
		cmd.SysProcAttr = testproc.AsNobody()
		if st := testproc.StartCmd(t, cmd).Wait(); st.ExitStatus() != 0 {
			t.Fatalf("report as uid %d exited %v", testproc.Nobody, st)
		}
		return out.String()
	}

	got := report(0o755)
	for _, want := range []string{"FAIL", "admin socket " + sock + " is not connectable for uid 65532 gid 65532 (permission denied)",
		"it is Srwxr-xr-x (0755) owned by uid 0 gid 0", "set pipe.mode in Envoy's bootstrap", "mode: 438"} {
		if !strings.Contains(got, want) {
			t.Errorf("report at mode 0755 lacks %q:\n%s", want, got)
		}
	}
	// The fix it names works.
	if got := report(0o666); strings.Contains(got, "not connectable") || !strings.Contains(got, "state LIVE") {
		t.Errorf("report at mode 0666 got:\n%s", got)
	}
	// Root connects whatever the mode.
	if err := CheckSocket(sock); err != nil {
		t.Errorf("CheckSocket as root got %v", err)
	}
}
