package inject

import (
	"bytes"
	"fmt"
	"io"
)

// A small line diff for --dry-run: Myers' O(ND) algorithm over the lines
// that differ once the common head and tail are cut, printed as a unified
// diff with three lines of context.

// editOp is one line of an edit script.
type editOp struct {
	kind byte // ' ' kept, '-' deleted from a, '+' inserted from b
	a, b int  // line index in a (kept, deleted) and in b (kept, inserted)
}

// maxEdits bounds Myers' search; past it the differing middle is shown as
// deleted then inserted, which is still a correct diff.
const maxEdits = 2000

// diffLines returns an edit script turning a into b.
func diffLines(a, b [][]byte) []editOp {
	head := 0
	for head < len(a) && head < len(b) && bytes.Equal(a[head], b[head]) {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && bytes.Equal(a[len(a)-1-tail], b[len(b)-1-tail]) {
		tail++
	}
	var ops []editOp
	for i := 0; i < head; i++ {
		ops = append(ops, editOp{' ', i, i})
	}
	ops = append(ops, myers(a[head:len(a)-tail], b[head:len(b)-tail], head)...)
	for i := 0; i < tail; i++ {
		ops = append(ops, editOp{' ', len(a) - tail + i, len(b) - tail + i})
	}
	return ops
}

// myers diffs a and b (whose first lines are line off of both inputs).
func myers(a, b [][]byte, off int) []editOp {
	n, m := len(a), len(b)
	max := n + m
	if max == 0 {
		return nil
	}
	if max > maxEdits {
		max = maxEdits
	}
	// v[k+max] is the furthest x on diagonal k; trace keeps v per step d.
	v := make([]int, 2*max+2)
	var trace [][]int
	found := -1
	for d := 0; d <= max && found < 0; d++ {
		trace = append(trace, append([]int(nil), v[max-d+1:max+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[k-1+max+1] < v[k+1+max+1]) {
				x = v[k+1+max+1]
			} else {
				x = v[k-1+max+1] + 1
			}
			y := x - k
			for x < n && y < m && bytes.Equal(a[x], b[y]) {
				x, y = x+1, y+1
			}
			v[k+max+1] = x
			if x >= n && y >= m {
				found = d
				break
			}
		}
	}
	if found < 0 {
		var ops []editOp
		for i := range a {
			ops = append(ops, editOp{'-', off + i, off})
		}
		for j := range b {
			ops = append(ops, editOp{'+', off + n, off + j})
		}
		return ops
	}
	// Walk back from (n, m) through the saved steps.
	var rev []editOp
	x, y := n, m
	for d := found; d > 0; d-- {
		prev := trace[d] // v as step d found it: diagonals -d..d at k+d
		at := func(k int) int { return prev[k+d] }
		k := x - y
		var pk int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(pk)
		py := px - pk
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, editOp{' ', off + x, off + y})
		}
		if x == px {
			y--
			rev = append(rev, editOp{'+', off + x, off + y})
		} else {
			x--
			rev = append(rev, editOp{'-', off + x, off + y})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, editOp{' ', off + x, off + y})
	}
	ops := make([]editOp, len(rev))
	for i := range rev {
		ops[i] = rev[len(rev)-1-i]
	}
	return ops
}

// splitLines cuts s after each newline; the last line may lack one.
func splitLines(s []byte) [][]byte {
	var out [][]byte
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\n') + 1
		if i == 0 {
			i = len(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// unifiedDiff writes the unified diff of a and b, labelled nameA and
// nameB, with ctx lines of context. Equal inputs write nothing.
func unifiedDiff(w io.Writer, nameA, nameB string, a, b []byte, ctx int) error {
	la, lb := splitLines(a), splitLines(b)
	ops := diffLines(la, lb)
	var buf bytes.Buffer
	line := func(prefix byte, l []byte) {
		buf.WriteByte(prefix)
		buf.Write(l)
		if !bytes.HasSuffix(l, []byte("\n")) {
			buf.WriteString("\n\\ No newline at end of file\n")
		}
	}
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk runs from ctx lines before this change to ctx lines after
		// the last change that is at most 2*ctx kept lines further on.
		start := max(i-ctx, 0)
		end := i
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j
			} else if j-end > 2*ctx {
				break
			}
		}
		stop := min(end+ctx+1, len(ops))
		var na, nb int
		for _, op := range ops[start:stop] {
			if op.kind != '+' {
				na++
			}
			if op.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&buf, "@@ -%s +%s @@\n", hunkRange(ops[start].a, na), hunkRange(ops[start].b, nb))
		for _, op := range ops[start:stop] {
			if op.kind == '+' {
				line('+', lb[op.b])
			} else {
				line(op.kind, la[op.a])
			}
		}
		i = stop
	}
	if buf.Len() == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "--- %s\n+++ %s\n", nameA, nameB); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// hunkRange formats a hunk's "start,count" as GNU diff does: lines from 1,
// the count left out when 1, and an empty range at the line before it.
func hunkRange(start, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}
