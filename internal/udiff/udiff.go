// Package udiff prints line diffs in the unified format of GNU diff -u.
//
// It replaces github.com/aymanbagabas/go-udiff, which cost the binary 77 KB
// and pushed it past its 8 MB target (issue 9 point 6).
package udiff

import (
	"strconv"
	"strings"
)

const context = 3

// Unified returns the diff from old to new as `diff -u --label oldName
// --label newName` prints it, or "" when the texts are equal.
func Unified(oldName, newName, old, new string) string {
	if old == new {
		return ""
	}
	a, b := lines(old), lines(new)
	ch := changes(a, b)
	var sb strings.Builder
	sb.WriteString("--- " + oldName + "\n+++ " + newName + "\n")
	for i := 0; i < len(ch); {
		// GNU diff joins changes whose gap is at most twice the context.
		j := i + 1
		for j < len(ch) && ch[j].a0-ch[j-1].a1 <= 2*context {
			j++
		}
		first, last := ch[i], ch[j-1]
		a0 := max(0, first.a0-context)
		b0 := first.b0 - (first.a0 - a0)
		a1 := min(len(a), last.a1+context)
		b1 := last.b1 + (a1 - last.a1)
		sb.WriteString("@@ -" + span(a0, a1-a0) + " +" + span(b0, b1-b0) + " @@\n")
		x := a0
		for _, c := range ch[i:j] {
			put(&sb, ' ', a[x:c.a0])
			put(&sb, '-', a[c.a0:c.a1])
			put(&sb, '+', b[c.b0:c.b1])
			x = c.a1
		}
		put(&sb, ' ', a[x:a1])
		i = j
	}
	return sb.String()
}

// span formats a hunk range: an empty one names the line before it.
func span(start, n int) string {
	switch n {
	case 0:
		return strconv.Itoa(start) + ",0"
	case 1:
		return strconv.Itoa(start + 1)
	}
	return strconv.Itoa(start+1) + "," + strconv.Itoa(n)
}

func put(sb *strings.Builder, op byte, ls []string) {
	for _, l := range ls {
		sb.WriteByte(op)
		sb.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// lines splits s after each newline; a last line without one is kept, so
// "a" and "a\n" differ.
func lines(s string) []string {
	ls := strings.SplitAfter(s, "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// change replaces a[a0:a1] with b[b0:b1].
type change struct{ a0, a1, b0, b1 int }

// changes returns a shortest edit script from a to b (Myers' O(ND)
// algorithm), as the runs between matched lines.
func changes(a, b []string) []change {
	n, m := len(a), len(b)
	off := n + m + 1
	v := make([]int, 2*off+1)
	// trace[d] holds v[-d..d] as it was before step d, for the walk back.
	var trace [][]int
	d := 0
search:
	for ; ; d++ {
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				break search
			}
		}
	}
	// Walk back from the end, collecting the matched diagonals in reverse.
	var match [][2]int
	x, y := n, m
	for ; d > 0; d-- {
		t := trace[d] // t[i] is v[i-d]
		k := x - y
		pk := k - 1
		if k == -d || (k != d && t[k-1+d] < t[k+1+d]) {
			pk = k + 1
		}
		px := t[pk+d]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			match = append(match, [2]int{x, y})
		}
		x, y = px, py
	}
	for x > 0 && y > 0 {
		x--
		y--
		match = append(match, [2]int{x, y})
	}
	var ch []change
	pa, pb := 0, 0
	for i := len(match) - 1; i >= -1; i-- {
		ma, mb := n, m
		if i >= 0 {
			ma, mb = match[i][0], match[i][1]
		}
		if ma > pa || mb > pb {
			ch = append(ch, change{pa, ma, pb, mb})
		}
		pa, pb = ma+1, mb+1
	}
	return ch
}
