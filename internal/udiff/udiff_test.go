package udiff

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gnuDiff runs the oracle, GNU diff -u, on the two texts.
func gnuDiff(t *testing.T, old, new string) string {
	t.Helper()
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("GNU diff not installed (apt-get install -y diffutils)")
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	write(t, a, old)
	write(t, b, new)
	out, err := exec.Command("diff", "-u", "--label", "a", "--label", "b", a, b).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("diff: %v", err)
	}
	return string(out)
}

// patched applies our diff to old with patch(1) and returns the result.
func patched(t *testing.T, old, diff string) string {
	t.Helper()
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch not installed (apt-get install -y patch)")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	write(t, f, old)
	cmd := exec.Command("patch", "--quiet", "--force", "--posix", f)
	cmd.Stdin = strings.NewReader(diff)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("patch rejected the diff: %v\n%s\ndiff:\n%s", err, out, diff)
	}
	got, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

func write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUnifiedMatchesGNUDiff(t *testing.T) {
	many := func(from, to int) string {
		var sb strings.Builder
		for i := from; i <= to; i++ {
			sb.WriteString("line " + strconv.Itoa(i) + "\n")
		}
		return sb.String()
	}
	cases := []struct{ name, old, new string }{
		{"equal", "a\nb\n", "a\nb\n"},
		{"from empty", "", "a\nb\n"},
		{"to empty", "a\nb\n", ""},
		{"one line changed", "a\n", "b\n"},
		{"insert at start", "b\nc\n", "a\nb\nc\n"},
		{"insert at end", "a\nb\n", "a\nb\nc\n"},
		{"delete middle", many(1, 10), strings.Replace(many(1, 10), "line 5\n", "", 1)},
		{"newline added", "a\nb", "a\nb\n"},
		{"newline removed", "a\nb\n", "a\nb"},
		{"both lack newline", "a\nb", "a\nc"},
		{"only newline to empty", "\n", ""},
		{"two hunks", many(1, 20), strings.NewReplacer("line 2\n", "two\n", "line 18\n", "eighteen\n").Replace(many(1, 20))},
		{"gap of six merges", many(1, 20), strings.NewReplacer("line 5\n", "five\n", "line 12\n", "twelve\n").Replace(many(1, 20))},
		{"gap of seven splits", many(1, 20), strings.NewReplacer("line 5\n", "five\n", "line 13\n", "thirteen\n").Replace(many(1, 20))},
		{"replace block", many(1, 9), many(1, 3) + "x\ny\n" + many(7, 9)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := gnuDiff(t, c.old, c.new)
			got := Unified("a", "b", c.old, c.new)
			if got != want {
				t.Fatalf("got:\n%s\nGNU diff -u:\n%s", got, want)
			}
			if got != "" {
				if p := patched(t, c.old, got); p != c.new {
					t.Fatalf("patch gave %q, want %q", p, c.new)
				}
			}
		})
	}
}

// randomPair makes an old text and an edited copy. With distinct lines the
// shortest edit is unique, so GNU diff's output must match ours byte for
// byte; with few distinct lines it may not be, and only patch and the edit
// size are checked.
func randomPair(r *rand.Rand, distinct bool) (string, string) {
	word := func(i int) string {
		if distinct {
			return "l" + strconv.Itoa(i) + "\n"
		}
		return string(rune('a'+r.IntN(3))) + "\n"
	}
	n := r.IntN(40)
	var old, new []string
	next := 0
	for range n {
		old = append(old, word(next))
		next++
	}
	for _, l := range old {
		switch r.IntN(6) {
		case 0: // delete
		case 1: // insert before
			new = append(new, word(next), l)
			next++
		case 2: // replace
			new = append(new, word(next))
			next++
		default:
			new = append(new, l)
		}
	}
	if r.IntN(4) == 0 {
		new = append(new, word(next))
	}
	o, w := strings.Join(old, ""), strings.Join(new, "")
	// Now and then drop a final newline on either side.
	if r.IntN(5) == 0 {
		o = strings.TrimSuffix(o, "\n")
	}
	if r.IntN(5) == 0 {
		w = strings.TrimSuffix(w, "\n")
	}
	return o, w
}

func TestUnifiedRandomAgainstDiffAndPatch(t *testing.T) {
	seed := uint64(os.Getpid())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 14))
	for i := range 300 {
		distinct := i%2 == 0
		old, new := randomPair(r, distinct)
		got := Unified("a", "b", old, new)
		want := gnuDiff(t, old, new)
		if (got == "") != (want == "") {
			t.Fatalf("old %q new %q: got %q, GNU diff -u %q", old, new, got, want)
		}
		if got == "" {
			continue
		}
		if p := patched(t, old, got); p != new {
			t.Fatalf("old %q new %q: patch gave %q\ndiff:\n%s", old, new, p, got)
		}
		if distinct && got != want {
			t.Fatalf("old %q new %q:\ngot:\n%s\nGNU diff -u:\n%s", old, new, got, want)
		}
		// Both must be shortest: the same number of removed and added lines.
		if a, b := edits(got), edits(want); a != b {
			t.Fatalf("old %q new %q: %d edited lines, GNU diff -u has %d\ngot:\n%s\nwant:\n%s", old, new, a, b, got, want)
		}
	}
}

func edits(d string) int {
	n := 0
	for _, l := range strings.Split(d, "\n")[2:] {
		if strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+") {
			n++
		}
	}
	return n
}

func FuzzUnified(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nc\nd")
	f.Fuzz(func(t *testing.T, old, new string) {
		if bytes.IndexByte([]byte(old+new), 0) >= 0 || len(old)+len(new) > 2000 {
			t.Skip()
		}
		got := Unified("a", "b", old, new)
		if got == "" {
			if old != new {
				t.Fatalf("empty diff for different texts %q %q", old, new)
			}
			return
		}
		if p := patched(t, old, got); p != new {
			t.Fatalf("old %q new %q: patch gave %q\ndiff:\n%s", old, new, p, got)
		}
	})
}
