package inject

import (
	"bytes"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// applyUnified applies a unified diff made by unifiedDiff to a, strictly:
// every context and deleted line must match.
func applyUnified(t testing.TB, a, diff []byte) []byte {
	t.Helper()
	if len(diff) == 0 {
		return a
	}
	src := splitLines(a)
	lines := splitLines(diff)
	if len(lines) < 2 || !bytes.HasPrefix(lines[0], []byte("--- ")) || !bytes.HasPrefix(lines[1], []byte("+++ ")) {
		t.Fatalf("no diff header in:\n%s", diff)
	}
	var out [][]byte
	pos := 0 // next line of src to copy
	var last *[]byte
	for i := 2; i < len(lines); i++ {
		l := lines[i]
		switch {
		case bytes.HasPrefix(l, []byte("@@ -")):
			f := strings.Fields(string(l))
			start, _, _ := strings.Cut(strings.TrimPrefix(f[1], "-"), ",")
			n, err := strconv.Atoi(start)
			if err != nil {
				t.Fatalf("bad hunk header %q", l)
			}
			if !strings.Contains(f[1], ",0") {
				n-- // lines from 1; an empty range names the line before
			}
			for pos < n {
				out = append(out, src[pos])
				pos++
			}
		case bytes.Equal(l, []byte("\\ No newline at end of file\n")):
			if last != nil {
				*last = bytes.TrimSuffix(*last, []byte("\n"))
			}
			continue
		case l[0] == ' ' || l[0] == '-':
			if pos >= len(src) || !bytes.Equal(bytes.TrimSuffix(src[pos], []byte("\n")), bytes.TrimSuffix(l[1:], []byte("\n"))) {
				t.Fatalf("hunk line %q does not match input line %d", l, pos+1)
			}
			if l[0] == ' ' {
				out = append(out, src[pos])
				last = &out[len(out)-1]
			} else {
				last = nil
			}
			pos++
			continue
		case l[0] == '+':
			out = append(out, append([]byte(nil), l[1:]...))
			last = &out[len(out)-1]
			continue
		default:
			t.Fatalf("unexpected diff line %q", l)
		}
		last = nil
	}
	out = append(out, src[pos:]...)
	return bytes.Join(out, nil)
}

func TestUnifiedDiff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, a, b, want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"insert", "a\nb\nc\n", "a\nb\nx\nc\n", "--- A\n+++ B\n@@ -1,3 +1,4 @@\n a\n b\n+x\n c\n"},
		{"delete", "a\nb\nc\n", "a\nc\n", "--- A\n+++ B\n@@ -1,3 +1,2 @@\n a\n-b\n c\n"},
		{"into empty", "", "a\n", "--- A\n+++ B\n@@ -0,0 +1 @@\n+a\n"},
		{"no newline", "a\nb", "a\nc", "--- A\n+++ B\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{
			"two hunks",
			"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "1\nx\n3\n4\n5\n6\n7\n8\n9\n10\ny\n12\n",
			"--- A\n+++ B\n@@ -1,5 +1,5 @@\n 1\n-2\n+x\n 3\n 4\n 5\n@@ -8,5 +8,5 @@\n 8\n 9\n 10\n-11\n+y\n 12\n",
		},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := unifiedDiff(&b, "A", "B", []byte(tc.a), []byte(tc.b), 3); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, b.String(), tc.want)
		}
		if got := applyUnified(t, []byte(tc.a), b.Bytes()); string(got) != tc.b {
			t.Errorf("%s: applied got %q, want %q", tc.name, got, tc.b)
		}
	}
}

// TestUnifiedDiffRandom applies diffs of random edits and checks they give
// the edited text back, and that Myers finds a minimal script for small
// cases (compared with an LCS table).
func TestUnifiedDiffRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewSource(1))
	gen := func(n int) []byte {
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%c\n", 'a'+r.Intn(4))
		}
		if r.Intn(5) == 0 && b.Len() > 0 {
			b.Truncate(b.Len() - 1)
		}
		return b.Bytes()
	}
	for i := 0; i < 2000; i++ {
		a, b := gen(r.Intn(30)), gen(r.Intn(30))
		var d bytes.Buffer
		if err := unifiedDiff(&d, "a", "b", a, b, r.Intn(4)); err != nil {
			t.Fatal(err)
		}
		if got := applyUnified(t, a, d.Bytes()); !bytes.Equal(got, b) {
			t.Fatalf("case %d: a %q b %q: applied got %q\n%s", i, a, b, got, d.String())
		}
		la, lb := splitLines(a), splitLines(b)
		edits := 0
		for _, op := range diffLines(la, lb) {
			if op.kind != ' ' {
				edits++
			}
		}
		if want := len(la) + len(lb) - 2*lcs(la, lb); edits != want {
			t.Fatalf("case %d: %d edits, want the minimum %d", i, edits, want)
		}
	}
	// Past maxEdits the diff is not minimal but still correct.
	var big1, big2 bytes.Buffer
	for i := 0; i < 3*maxEdits; i++ {
		fmt.Fprintf(&big1, "%d\n", i)
		fmt.Fprintf(&big2, "%d\n", i*7)
	}
	var d bytes.Buffer
	if err := unifiedDiff(&d, "a", "b", big1.Bytes(), big2.Bytes(), 3); err != nil {
		t.Fatal(err)
	}
	if got := applyUnified(t, big1.Bytes(), d.Bytes()); !bytes.Equal(got, big2.Bytes()) {
		t.Fatalf("big diff does not apply")
	}
}

func lcs(a, b [][]byte) int {
	t := make([][]int, len(a)+1)
	for i := range t {
		t[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if bytes.Equal(a[i], b[j]) {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	return t[0][0]
}
