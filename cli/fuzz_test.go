package cli

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSuggest checks the did-you-mean against a plain edit distance: a
// suggestion is a listed subcommand exactly one edit (or one swap of
// neighbours) from the name, never the name itself, and never given when
// another subcommand is as close or the name is a program in PATH.
func FuzzSuggest(f *testing.F) {
	for _, s := range []string{"", "drian", "doctr", "versoin", "hlep", "dran", "inject", "injects", "x/drain", "\xffrain", "drainn", "shutdown-manger"} {
		f.Add(s, "", false)
	}
	f.Add("drai", "dram", false) // two candidates one edit away: ambiguous
	f.Add("drian", "", true)
	f.Fuzz(func(t *testing.T, name, extra string, inPath bool) {
		subs := slices.Clone(subcommands)
		if extra != "" {
			subs = append(subs, extra)
		}
		got := Suggest(name, subs, func(string) bool { return inPath })
		var near []string
		for _, s := range subs {
			if osa([]rune(name), []rune(s)) == 1 {
				near = append(near, s)
			}
		}
		want := ""
		if name != "" && len(near) == 1 && !inPath && !slices.Contains(subs, name) && !strings.Contains(name, "/") {
			want = near[0]
		}
		if got != want {
			t.Fatalf("Suggest(%q, +%q, inPath=%v) = %q, want %q (one edit away: %q)", name, extra, inPath, got, want, near)
		}
	})
}

// osa is the optimal string alignment distance: inserts, deletes,
// substitutions and swaps of neighbours, each costing one.
func osa(a, b []rune) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// FuzzWrap checks help wrapping keeps every word in order, and that a line
// longer than the width is one that cannot be broken: after its indentation
// it holds a word that alone fills the width.
func FuzzWrap(f *testing.F) {
	f.Add("  --delay DURATION  how long to wait before draining, a duration such as 500ms, 30s or 1m30s, or a number of seconds", uint8(0))
	f.Add("Usage: envoy-lifecycle [flags] -- command [args...]\n\n"+strings.Repeat("word ", 40), uint8(0))
	f.Add("  "+strings.Repeat("x", 120)+" tail", uint8(0))
	f.Add("  name      "+strings.Repeat("y", 95)+" and more words after the long one", uint8(0))
	f.Add(strings.Repeat(" ", 102)+"x", uint8(0))
	f.Add("short", uint8(10))
	f.Fuzz(func(t *testing.T, text string, w uint8) {
		width := Width
		if w != 0 {
			width = int(w) // 1..255
		}
		if !utf8.ValidString(text) {
			return // help text is ours, and UTF-8
		}
		out := Wrap(text, width)
		if a, b := strings.Fields(text), strings.Fields(out); !slices.Equal(a, b) {
			t.Fatalf("Wrap(%q, %d) changed the words:\n%q\n%q", text, width, a, b)
		}
		for _, line := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(line); n > width && !unbreakable(line, width) {
				t.Fatalf("Wrap(%q, %d): line of %d columns could be broken: %q", text, width, n, line)
			}
			if strings.HasSuffix(line, " ") {
				t.Fatalf("Wrap(%q, %d): trailing space in %q", text, width, line)
			}
		}
	})
}

// unbreakable reports whether a line over width offers no cut Wrap should
// have taken: a space ending a word, past the line's indentation and past
// half the width (a table's last column starts at most there), within the
// width.
func unbreakable(line string, width int) bool {
	r := []rune(line)
	indent := len(r) - len([]rune(strings.TrimLeft(line, " ")))
	for i := max(indent, width/2) + 1; i <= width && i < len(r); i++ {
		if r[i] == ' ' && r[i-1] != ' ' {
			return false
		}
	}
	return true
}
