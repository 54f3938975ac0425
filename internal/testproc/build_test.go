package testproc

import (
	"debug/elf"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestDockerBuildReadsTheDockerfile(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	env, args, err := DockerBuild(root)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(env, []string{"CGO_ENABLED=0"}) {
		t.Errorf("env got %q, want [CGO_ENABLED=0] (GOOS/GOARCH stay the host's)", env)
	}
	want := []string{"build", "-tags", "nethttpomithttp2", "-trimpath", "-ldflags", "-s -w -X main.version=" + Version + " -X main.commit=" + Commit}
	if !slices.Equal(args, want) {
		t.Errorf("args got %q, want %q", args, want)
	}
}

// TestBuildIsTheShippedBuild reads the build settings Go records in the
// binary, which say how it was really built.
func TestBuildIsTheShippedBuild(t *testing.T) {
	t.Parallel()
	bin := Build(t)
	if again := Build(t); again != bin {
		t.Errorf("second Build got %s, want the cached %s", again, bin)
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, want := range []string{
		"\tpath\tenvoy-lifecycle\n",
		"\tbuild\t-tags=nethttpomithttp2\n",
		"\tbuild\t-trimpath=true\n",
		"\tbuild\tCGO_ENABLED=0\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("go version -m %s lacks %q:\n%s", bin, want, out)
		}
	}
	// -trimpath keeps -ldflags out of the recorded settings; its effects
	// show: the stamped version, and no symbol table (-s).
	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), Version+" (commit "+Commit) {
		t.Errorf("%s version got %q (%v), want %s and commit %s", bin, out, err, Version, Commit)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Section(".symtab") != nil {
		t.Error("binary has a .symtab: not built with -ldflags -s")
	}
}
