package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

// What the image promises (issue 6): at most 10 MB (10^6 bytes). The image
// is scratch plus the binary and an empty /tmp, so the binary is the image.
// There is no engine here to measure the image itself.
const (
	imageTarget   = 10_000_000
	baseImageSize = 0
)

// TestImage builds the binary as the Dockerfile does and proves what can be
// proved without a container engine: it is static and stripped, and it works
// as PID 1 of a root filesystem holding only itself and a static app.
func TestImage(t *testing.T) {
	t.Parallel()
	bin := testproc.Build(t)
	app := testproc.BuildMain(t, "./testdata/orphanapp")

	t.Run("static and stripped", func(t *testing.T) {
		checkStatic(t, bin)
		checkStatic(t, app)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, s := range []string{".symtab", ".debug_info"} {
			if f.Section(s) != nil {
				t.Errorf("%s section present: not stripped (-s -w)", s)
			}
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if wd, _ := os.Getwd(); bytes.Contains(b, []byte(wd)) {
			t.Errorf("binary holds the build directory %s: built without -trimpath", wd)
		}
		t.Logf("binary size %d bytes; image ≈ %d bytes on scratch", len(b), len(b)+baseImageSize)
		if len(b)+baseImageSize > imageTarget {
			t.Errorf("binary is %d bytes: with a %d byte base the image exceeds the %d byte target", len(b), baseImageSize, imageTarget)
		}
	})

	// testproc.Build takes its flags from the Dockerfile; these are the ones
	// the promises above rest on.
	t.Run("dockerfile builds the same way", func(t *testing.T) {
		env, args, err := testproc.DockerBuild(".")
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Join(append(env, args...), " ")
		for _, want := range []string{"CGO_ENABLED=0", "-tags nethttpomithttp2", "-trimpath", "-ldflags -s -w -X main.version=" + testproc.Version + " -X main.commit=" + testproc.Commit} {
			if !strings.Contains(line, want) {
				t.Errorf("the Dockerfile's build (%s) lacks %q", line, want)
			}
		}
		b, err := os.ReadFile("Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []string{
			`(?m)^FROM --platform=\$BUILDPLATFORM golang:1\.26`,
			`GOOS=\$TARGETOS GOARCH=\$TARGETARCH`,
			`(?m)^FROM scratch$`,
			`(?m)^COPY --from=build /out/tmp /tmp$`,
			`(?m)^USER 65532:65532$`,
			`(?m)^ENTRYPOINT \["/envoy-lifecycle"\]$`,
		} {
			if !regexp.MustCompile(re).Match(b) {
				t.Errorf("Dockerfile does not match %s", re)
			}
		}
	})

	t.Run("pid 1 in an empty root filesystem", func(t *testing.T) {
		if os.Geteuid() != 0 {
			testproc.SkipOrFailInCI(t, "skipped: needs root, for unshare --pid --mount --root (a PID namespace and a chroot)")
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			testproc.SkipOrFailInCI(t, "skipped: unshare not found (install util-linux)")
		}
		root := emptyRootfs(t, bin, app)

		stdout, stderr, code := runInRootfs(t, unshare, root, "/envoy-lifecycle", "version")
		want := fmt.Sprintf("envoy-lifecycle %s (commit %s, %s)", testproc.Version, testproc.Commit, runtime.Version())
		if code != 0 || strings.TrimSpace(stdout) != want {
			t.Errorf("version got %q (exit %d, stderr %q), want %q", stdout, code, stderr, want)
		}

		for _, want := range []int{0, 3, 42} {
			stdout, stderr, code := runInRootfs(t, unshare, root, "/envoy-lifecycle", "/app", fmt.Sprint(want))
			if code != want {
				t.Errorf("exit code got %d, want %d\nstdout: %s\nstderr: %s", code, want, stdout, stderr)
				continue
			}
			// The app exits want only once its orphan is reaped (99 if it
			// stays a zombie); the wrapper, as PID 1, says it reaped it.
			orphan, ok := strings.CutPrefix(strings.TrimSpace(stdout), "orphan ")
			if !ok {
				t.Errorf("app stdout got %q, want \"orphan PID\"", stdout)
				continue
			}
			for _, re := range []string{
				`reaper started: pid1=true`,
				`reaped orphan: pid=` + regexp.QuoteMeta(orphan) + `\b`,
				fmt.Sprintf(`app exited: code=%d\b`, want),
			} {
				if !regexp.MustCompile(re).MatchString(stderr) {
					t.Errorf("exit %d: log does not match %s\n%s", want, re, stderr)
				}
			}
		}
	})
}

// checkStatic fails unless path is an ELF with no interpreter and no dynamic
// section, which is what runs with no libc and no ld.so.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static", filepath.Base(path), p.Type)
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Errorf("%s has a .dynamic or .interp section: not static", filepath.Base(path))
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s imports libraries %v (%v)", filepath.Base(path), libs, err)
	}
}

// emptyRootfs builds a root with only the two binaries and an empty /proc for
// unshare to mount: no shell, no libc, no /dev, no /etc.
func emptyRootfs(t *testing.T, bin, app string) string {
	t.Helper()
	root := t.TempDir()
	for src, dst := range map[string]string{bin: "envoy-lifecycle", app: "app"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	return root
}

// runInRootfs runs argv chrooted into root as PID 1 of new PID and mount
// namespaces. unshare exits with the code of its child.
func runInRootfs(t *testing.T, unshare, root string, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(unshare, append([]string{"--pid", "--fork", "--kill-child", "--mount-proc", "--root=" + root, "--"}, argv...)...)
	cmd.Env = []string{"ENVOY_LIFECYCLE_LOG_LEVEL=debug"}
	var out testproc.Buffer
	cmd.Stdout = &out
	// --kill-child: the namespace dies with unshare, which cleanup kills.
	p := testproc.StartCmd(t, cmd)
	ws := p.Wait()
	if ws.Signaled() {
		return out.String(), p.Stderr.String(), 128 + int(ws.Signal())
	}
	return out.String(), p.Stderr.String(), ws.ExitStatus()
}

// TestBinaryLinksNoTestSupport: the shipped binary, with the Dockerfile's
// tags, links none of the fakes, simulators and test support, and nothing
// of Kubernetes.
func TestBinaryLinksNoTestSupport(t *testing.T) {
	t.Parallel()
	_, args, err := testproc.DockerBuild(".")
	if err != nil {
		t.Fatal(err)
	}
	list := []string{"list", "-deps"}
	for i, a := range args {
		if a == "-tags" && i+1 < len(args) {
			list = append(list, "-tags", args[i+1])
		}
	}
	out, err := exec.Command("go", append(list, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(list, " "), err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "envoy-lifecycle/wrapper") {
		t.Fatalf("go list -deps got %q, which lacks envoy-lifecycle/wrapper: not the binary's dependencies", deps)
	}
	for _, d := range deps {
		switch {
		case d == "testing", strings.HasPrefix(d, "testing/"),
			strings.HasPrefix(d, "k8s.io/"),
			strings.HasPrefix(d, "envoy-lifecycle/envoyfake"),
			strings.HasPrefix(d, "envoy-lifecycle/lbsim"),
			strings.HasPrefix(d, "envoy-lifecycle/kubeletsim"),
			strings.HasPrefix(d, "envoy-lifecycle/internal/testproc"),
			strings.HasPrefix(d, "envoy-lifecycle/internal/envoytest"),
			strings.HasPrefix(d, "envoy-lifecycle/internal/dockerbuild"),
			strings.HasPrefix(d, "envoy-lifecycle/internal/pinned"),
			strings.HasPrefix(d, "envoy-lifecycle/e2e"),
			strings.HasPrefix(d, "envoy-lifecycle/interop"),
			strings.Contains(d, "test") && strings.HasPrefix(d, "envoy-lifecycle/"):
			t.Errorf("the shipped binary links %s", d)
		}
	}
}
