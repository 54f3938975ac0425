package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"envoy-lifecycle/settings"
)

var update = flag.Bool("update", false, "rewrite the README tables generated from the code")

// checkReadmeTable compares the Markdown table of file that starts with the
// line beginning with head to want, and rewrites it with -update.
func checkReadmeTable(t *testing.T, file, head, want string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(b, []byte("\n"+head))
	if start < 0 {
		t.Fatalf("%s has no table starting with %q", file, head)
	}
	start++
	end := start
	for end < len(b) && b[end] == '|' {
		nl := bytes.IndexByte(b[end:], '\n')
		if nl < 0 {
			end = len(b)
			break
		}
		end += nl + 1
	}
	got := string(b[start:end])
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, b[:start]...), want...), b[end:]...)
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s: table differs from the code at row %d (go test -run %s -update rewrites it):\n got  %s\n want %s", file, i, t.Name(), g, w)
			return
		}
	}
}

// TestVariableTableInReadme: item 16. README.md's variable table is the one
// `help` prints, from the same struct tags.
func TestVariableTableInReadme(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	settings.WriteMarkdown(&want, settings.Vars(wrapDefaults()))
	checkReadmeTable(t, "README.md", "| Variable | Default | From | Meaning |", want.String())
}

// TestMigrationTableInReadme: the README's table of inherited variables is
// settings.InheritedVars, which the peer rules read.
func TestMigrationTableInReadme(t *testing.T) {
	t.Parallel()
	var want bytes.Buffer
	settings.WriteMigrationTable(&want)
	checkReadmeTable(t, "README.md", "| Variables (peers) |", want.String())
}
