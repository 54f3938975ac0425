package dockerbuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	cases := []struct {
		name, file string
		env, args  []string
		err        string
	}{
		{"continued lines and arg defaults", "ARG X=1 COMMIT=none\nRUN --mount=type=cache,target=/x \\\n    CGO_ENABLED=0 GOARCH=$TARGETARCH \\\n    go build -tags \"a b\" -ldflags \"-X m.x=$X -X m.c=$COMMIT\" -o /out/bin .\n",
			[]string{"CGO_ENABLED=0"}, []string{"build", "-tags", "a b", "-ldflags", "-X m.x=1 -X m.c=abc"}, ""},
		{"no build line", "FROM scratch\nRUN go mod download\n", nil, nil, "no RUN line"},
		{"unterminated quote", "RUN go build -ldflags \"-s .\n", nil, nil, "unterminated quote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
			env, args, err := Flags(dir, map[string]string{"COMMIT": "abc"})
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
