package inject

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestUntouchedLinesKept injects testdata/layout.input.yaml, whose
// documents inject edits, and checks that every input line the edit does
// not touch comes out byte for byte: blank lines, spaces before trailing
// comments, comments on their own lines, flow collections, quoted scalars
// and block scalars. The input is also tried with CRLF line ends and
// without a final newline.
func TestUntouchedLinesKept(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/layout.input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The lines the edit replaces, by their content.
	touched := map[string]bool{
		`        command: ["/http-svc", "serve"]    # flow list`:     true,
		`  terminationGracePeriodSeconds: 10    # too short: raised`: true,
		`        exec:`: true,
		`          command: ["/bin/sh", "-c", "sleep 5"]`: true,
	}
	o := Options{Preset: "envoy", FixGrace: true}
	for name, in := range map[string][]byte{
		"LF":         src,
		"CRLF":       bytes.ReplaceAll(src, []byte("\n"), []byte("\r\n")),
		"no newline": bytes.TrimRight(src, "\n"),
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := Inject("layout.yaml", in, o)
			if err != nil {
				t.Fatal(err)
			}
			checkOutput(t, name, in, out, false)
			for _, op := range diffLines(splitLines(in), splitLines(out)) {
				if op.kind != '-' {
					continue
				}
				l := splitLines(in)[op.a]
				if name == "no newline" && op.a == len(splitLines(in))-1 {
					// The last line gets its newline.
					continue
				}
				if !touched[strings.TrimRight(string(l), "\r\n")] {
					t.Errorf("input line %d %q is not in the output", op.a+1, l)
				}
			}
			if name == "CRLF" && bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
				t.Errorf("a changed CRLF document got LF lines:\n%q", out)
			}
			again, _, err := Inject("layout.yaml", out, o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, out) {
				var d bytes.Buffer
				_ = unifiedDiff(&d, "once", "twice", out, again, 3)
				t.Errorf("not idempotent:\n%s", d.String())
			}
		})
	}
}

// TestNormLine checks that lines compare equal only when they are the
// same YAML.
func TestNormLine(t *testing.T) {
	t.Parallel()
	same := [][2]string{
		{"  name: http-svc   # trailing", "  name: http-svc # trailing"},
		{"  name: x\t# c", "  name: x # c"},
		{"  a:    b  ", "  a: b"},
		{"  a: b   ", "  a: b"},
		{`    args: [ "--port=8080",  --verbose ]`, `    args: ["--port=8080", --verbose]`},
		{"    m: { app: web }   # flow", "    m: {app: web} # flow"},
		{"    other: it's   # c", "    other: it's # c"},
		{"x: 'it''s  #no'   # c", "x: 'it''s  #no' # c"},
		{"  # own line   ", "  # own line"},
	}
	for _, p := range same {
		if a, b := normLine([]byte(p[0])), normLine([]byte(p[1])); !bytes.Equal(a, b) {
			t.Errorf("normLine(%q) = %q, normLine(%q) = %q; want equal", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{
		{`  note: "keep   # not a comment"`, `  note: "keep # not a comment"`},
		{`  note: 'a   #b'`, `  note: 'a #b'`},
		{"  x: a  b", "  x: a b"},
		{"  x: foo-[a,  b]", "  x: foo-[a, b]"},
		{"  x: a , b", "  x: a, b"},
		{"  x: [a  b]", "  x: [a b]"},
		{"    # indented comment", "  # indented comment"},
		{"  x: a#b", "  x: a #b"},
	}
	for _, p := range differ {
		if a, b := normLine([]byte(p[0])), normLine([]byte(p[1])); bytes.Equal(a, b) {
			t.Errorf("normLine(%q) = normLine(%q) = %q; want different", p[0], p[1], a)
		}
	}
}

// TestBlockLines checks which lines are read as block scalar content.
func TestBlockLines(t *testing.T) {
	t.Parallel()
	src := "a: |\n  x   # y\n\n  z\nb: 1\n- k: >-\n    t\n  j: 2\n- |+\n  u\n\nc: !!str |2\n   v\nd: [|]\n"
	want := []bool{false, true, true, true, false, false, true, false, false, true, true, false, true, false}
	got := blockLines(splitLines([]byte(src)))
	for i, l := range splitLines([]byte(src)) {
		if got[i] != want[i] {
			t.Errorf("line %d %q: in block %v, want %v", i+1, l, got[i], want[i])
		}
	}
}

// TestRestoreBlockScalarChanged checks that a blank line is not put back
// into a block scalar whose content changed, and that a kept block
// scalar's text is the original one.
func TestRestoreBlockScalarChanged(t *testing.T) {
	t.Parallel()
	orig := "a: |\n  one\n\n  two\nb: >-\n  x\n  y\n\nc: 1\n"
	// The re-encoding of a tree in which a's value changed and b's did not.
	enc := "a: |\n  one\n  three\nb: >-\n  x y\nc: 2\n"
	for _, blocks := range []bool{true, false} {
		got := string(restoreLines([]byte(orig), []byte(enc), false, blocks))
		if !strings.Contains(got, "a: |\n  one\n  three\nb:") {
			t.Errorf("blocks=%v: a's new content not written as encoded:\n%s", blocks, got)
		}
		if blocks && !strings.Contains(got, "b: >-\n  x\n  y\n\nc: 2\n") {
			t.Errorf("blocks=%v: b's original text not kept:\n%s", blocks, got)
		}
	}
}

// TestRestoreComments checks that a comment on its own line keeps its
// original indentation, except right after a block scalar, where more
// indentation would make it content.
func TestRestoreComments(t *testing.T) {
	t.Parallel()
	orig := "a: 1\n    # odd\nb: 2\n"
	enc := "a: 1\n# odd\nb: 3\n"
	if got := string(restoreLines([]byte(orig), []byte(enc), false, true)); got != "a: 1\n    # odd\nb: 3\n" {
		t.Errorf("got %q", got)
	}
	orig = "a: |\n  x\nz: 1\n    # c\nb: 1\n"
	enc = "a: |\n  x\n# c\nb: 1\n"
	if got := string(restoreLines([]byte(orig), []byte(enc), false, true)); got != enc {
		t.Errorf("got %q, want %q", got, enc)
	}
}
