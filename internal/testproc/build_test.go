package testproc

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
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

func TestDockerBuildParsing(t *testing.T) {
	cases := []struct {
		name, file string
		env, args  []string
		err        string
	}{
		{"continued lines and arg defaults", "ARG X=1 COMMIT=none\nRUN --mount=type=cache,target=/x \\\n    CGO_ENABLED=0 GOARCH=$TARGETARCH \\\n    go build -tags \"a b\" -ldflags \"-X m.x=$X -X m.c=$COMMIT\" -o /out/bin .\n",
			[]string{"CGO_ENABLED=0"}, []string{"build", "-tags", "a b", "-ldflags", "-X m.x=1 -X m.c=" + Commit}, ""},
		{"no build line", "FROM scratch\nRUN go mod download\n", nil, nil, "no RUN line"},
		{"unterminated quote", "RUN go build -ldflags \"-s .\n", nil, nil, "unterminated quote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
			env, args, err := DockerBuild(dir)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error got %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(env, c.env) || !slices.Equal(args, c.args) {
				t.Errorf("got env %q args %q err %v, want env %q args %q", env, args, err, c.env, c.args)
			}
		})
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
