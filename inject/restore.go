package inject

import (
	"bytes"
	"regexp"

	yaml "go.yaml.in/yaml/v3"
)

// yaml.v3 writes a changed document again from its node tree, and so
// rewrites lines inject did not touch: it drops blank lines and collapses
// the spaces before a trailing comment ("x   # c" becomes "x # c"), among
// other whitespace. restoreLines undoes that: it diffs the original text
// against the re-encoded one, line by line, with an equality that ignores
// only whitespace which means nothing in YAML, and keeps the original text
// of every line that compares equal. The caller reads the result back and
// uses it only when it parses to the same tree as the re-encoding.

// lineKey returns what a line of a YAML text is compared by in
// restoreLines. Two lines get the same key only when they are the same
// YAML in the same context:
//
//   - a line inside a block scalar ("|" or ">") is content, whitespace and
//     "#" included: it is compared exactly, only its line break dropped;
//   - any other line is compared as normLine writes it.
//
// The key starts with 'B', 'C' (a comment on its own line, compared
// without its indentation) or 'N', so that block scalar content never
// matches a line outside one.
func lineKey(line []byte, inBlock bool) []byte {
	l := bytes.TrimSuffix(line, []byte("\n"))
	l = bytes.TrimSuffix(l, []byte("\r"))
	if inBlock {
		return append([]byte("B"), l...)
	}
	if t := bytes.TrimLeft(l, " \t"); len(t) > 0 && t[0] == '#' {
		// A comment on its own line: its indentation means nothing
		// outside a block scalar (yaml.v3 re-indents them).
		return append([]byte("C"), bytes.TrimRight(t, " \t")...)
	}
	return append([]byte("N"), normLine(l)...)
}

// normLine rewrites a line outside a block scalar without the whitespace
// that means nothing in YAML, outside quoted scalars:
//
//   - trailing whitespace is dropped;
//   - the run of spaces and tabs before a trailing comment becomes one
//     space (a comment-only line keeps its indentation, the comment's text
//     is kept as it is);
//   - the run after a ":" indicator ("key:   value") becomes one space;
//   - inside a flow collection that opens on the line, whitespace next to
//     "[", "]", "{", "}" and "," is dropped.
//
// Indentation and whitespace inside scalars ("a  b") are kept. A quote
// opens a quoted scalar only where a token can start, so that
// "it's   # c" is the plain scalar "it's" and a comment. A line that
// continues a quoted scalar or a flow collection from the line before is
// misread as starting outside it; that can only make restoreLines keep
// the original text of a line whose meaning differs, which the read-back
// check catches.
func normLine(l []byte) []byte {
	l = bytes.TrimRight(l, " \t")
	body := bytes.TrimLeft(l, " \t")
	out := append([]byte(nil), l[:len(l)-len(body)]...)
	content := len(out) // out[content:] is past the indentation
	var quote byte
	depth := 0
	last := func() byte {
		if len(out) == content {
			return ' '
		}
		return out[len(out)-1]
	}
	for i := len(l) - len(body); i < len(l); i++ {
		c := l[i]
		switch {
		case quote == '"':
			out = append(out, c)
			if c == '\\' && i+1 < len(l) {
				i++
				out = append(out, l[i])
			} else if c == '"' {
				quote = 0
			}
			continue
		case quote == '\'':
			out = append(out, c)
			if c == '\'' {
				if i+1 < len(l) && l[i+1] == '\'' {
					i++
					out = append(out, l[i])
				} else {
					quote = 0
				}
			}
			continue
		case c == ' ' || c == '\t':
			j := i
			for j < len(l) && (l[j] == ' ' || l[j] == '\t') {
				j++
			}
			prev := last()
			switch {
			case j == len(l):
				// trailing
			case l[j] == '#':
				if len(out) > content {
					out = append(out, ' ')
				}
			case depth > 0 && (bytes.IndexByte([]byte("[{,"), prev) >= 0 || bytes.IndexByte([]byte("]},"), l[j]) >= 0):
				// next to a flow indicator
			case prev == ':':
				out = append(out, ' ')
			default:
				out = append(out, l[i:j]...)
			}
			i = j - 1
			continue
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return append(out, l[i:]...)
		}
		// After "-", ":" or "," in block context, "[" and quotes are part
		// of a plain scalar ("a-[b]").
		tokenStart := last() == ' ' || last() == '\t' || depth > 0 && bytes.IndexByte([]byte("[{,:"), last()) >= 0
		switch {
		case (c == '"' || c == '\'') && tokenStart:
			quote = c
		case (c == '[' || c == '{') && tokenStart:
			depth++
		case (c == ']' || c == '}') && depth > 0:
			depth--
		}
		out = append(out, c)
	}
	return out
}

// blockHeader matches a line whose value is a block scalar: "key: |",
// "- >-", "key: !!str |2 # c", with its leading "- " indicators, key and
// indicator in groups 1, 2 and 3.
var blockHeader = regexp.MustCompile(`^((?:[ \t]*-[ \t]+)*[ \t]*)([^#]*?:[ \t]+)?(?:[!&][^ \t]*[ \t]+)*([|>][1-9+-]{0,2})[ \t]*(?:#.*)?$`)

// blockLines marks the lines of a YAML text that are inside a block scalar
// (not its header line): the lines after a header that are blank or
// indented past the node that holds the scalar. It reads the text alone,
// so it can be fooled by unusual layouts; restoreLines's callers check the
// result.
func blockLines(lines [][]byte) []bool {
	in := make([]bool, len(lines))
	parent := -1 // indentation the block's content must exceed; -1 outside
	for i, raw := range lines {
		l := bytes.TrimRight(raw, "\r\n")
		body := bytes.TrimLeft(l, " ")
		indent := len(l) - len(body)
		if parent >= 0 {
			if len(bytes.TrimSpace(l)) == 0 || indent > parent {
				in[i] = true
				continue
			}
			parent = -1
		}
		m := blockHeader.FindSubmatchIndex(l)
		if m == nil {
			continue
		}
		if m[4] >= 0 {
			// "key: |": the key's column.
			parent = m[3] // end of the "- " indicators and indentation
		} else {
			// "- |": the column of the last "-".
			p := bytes.LastIndexByte(l[:m[3]], '-')
			if p < 0 {
				// A bare "|" line: inside a flow collection or after a
				// tag on its own line. Treat what follows as content of
				// anything less indented.
				p = indent - 1
			}
			parent = p
		}
	}
	return in
}

// restoreLines returns the re-encoded text enc of a document with the
// original text of orig kept wherever a line's content did not change:
//
//   - a line equal (by lineKey) in both is written as in orig;
//   - a line only in enc is written as in enc, with orig's line ends (crlf);
//   - a blank line only in orig is kept (yaml.v3 drops them; outside block
//     scalars a blank line means nothing), unless the change it sits in
//     touches a block scalar, where a blank line could be content;
//   - any other line only in orig is dropped;
//   - with blocks, the content of a block scalar whose value is the same
//     in both is written as in orig (see blockRun).
//
// Within a run of changes the inserted lines come after the blank lines
// that stood before the first deleted line and before the others, so a
// blank line that separated two sections keeps separating them when a key
// is added at the end of the first.
func restoreLines(orig, enc []byte, crlf, blocks bool) []byte {
	la, lb := splitLines(orig), splitLines(enc)
	ba, bb := blockLines(la), blockLines(lb)
	ka, kb := make([][]byte, len(la)), make([][]byte, len(lb))
	for i, l := range la {
		ka[i] = lineKey(l, ba[i])
	}
	for i, l := range lb {
		kb[i] = lineKey(l, bb[i])
	}
	nl := []byte("\n")
	if crlf {
		nl = []byte("\r\n")
	}
	var out []byte
	emit := func(l []byte) {
		out = append(out, l...)
		if !bytes.HasSuffix(l, []byte("\n")) {
			out = append(out, nl...)
		}
	}
	emitNew := func(l []byte) {
		emit(bytes.TrimSuffix(l, []byte("\n")))
	}
	ops := diffLines(ka, kb)
	for i := 0; i < len(ops); {
		if op := ops[i]; op.kind == ' ' {
			// A comment line written more indented than yaml.v3 put it
			// could become content of a block scalar just before it.
			if ka[op.a][0] == 'C' && indent(la[op.a]) > indent(lb[op.b]) && op.b > 0 &&
				(bb[op.b-1] || blockHeader.Match(bytes.TrimRight(lb[op.b-1], "\r\n"))) {
				emitNew(lb[op.b])
			} else {
				emit(la[op.a])
			}
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != ' ' {
			j++
		}
		run := ops[i:j]
		prev := i - 1
		i = j
		if blocks && prev >= 0 {
			var kept []editOp
			kept, run = blockRun(run, ops[prev], la, lb, ba, bb)
			for _, op := range kept {
				emit(la[op.a])
			}
		}
		blanks, block := true, false
		for _, op := range run {
			if op.kind == '+' {
				block = block || bb[op.b] || blockHeader.Match(bytes.TrimRight(lb[op.b], "\r\n"))
			} else {
				block = block || ba[op.a] || blockHeader.Match(bytes.TrimRight(la[op.a], "\r\n"))
			}
		}
		// Blank lines before the first deleted non-blank line.
		k := 0
		for ; k < len(run); k++ {
			op := run[k]
			if op.kind != '-' {
				continue
			}
			if len(bytes.TrimSpace(la[op.a])) > 0 {
				blanks = false
				break
			}
		}
		if blanks {
			k = 0 // only blank lines deleted: they go after the inserted ones
		}
		keep := func(ops []editOp) {
			for _, op := range ops {
				if op.kind == '-' && !block && len(bytes.TrimSpace(la[op.a])) == 0 {
					emit(la[op.a])
				}
			}
		}
		keep(run[:k])
		for _, op := range run {
			if op.kind == '+' {
				emitNew(lb[op.b])
			}
		}
		keep(run[k:])
	}
	return out
}

// blockRun splits off the changes of run that continue a block scalar
// whose value is the same in both texts: when the line kept before them
// (prev) is a block scalar's header or content in both, and the scalar
// reads the same from both texts (yaml.v3 folds ">" scalars again, and
// drops their trailing blank lines), the deleted lines of block content
// that open the run's deletions are kept and the inserted ones that open
// its insertions dropped. It returns the kept lines and the rest of run.
func blockRun(run []editOp, prev editOp, la, lb [][]byte, ba, bb []bool) (kept, rest []editOp) {
	va, oka := blockValue(la, ba, prev.a)
	vb, okb := blockValue(lb, bb, prev.b)
	if !oka || !okb || va != vb {
		return nil, run
	}
	inA, inB := true, true
	for _, op := range run {
		switch {
		case op.kind == '-' && inA && ba[op.a]:
			kept = append(kept, op)
		case op.kind == '+' && inB && bb[op.b]:
		default:
			if op.kind == '-' {
				inA = false
			} else {
				inB = false
			}
			rest = append(rest, op)
		}
	}
	return kept, rest
}

// blockValue returns the value of the block scalar that line i of lines
// heads or is inside of. It reports false when line i is neither, and for
// a scalar with an explicit indentation ("|2"), which is relative to where
// the scalar sits.
func blockValue(lines [][]byte, in []bool, i int) (v string, ok bool) {
	h := i
	for h >= 0 && in[h] {
		h--
	}
	if h < 0 {
		return "", false
	}
	m := blockHeader.FindSubmatch(bytes.TrimRight(lines[h], "\r\n"))
	if m == nil || bytes.ContainsAny(m[3], "123456789") {
		return "", false
	}
	snippet := append([]byte("x: "), m[3]...)
	snippet = append(snippet, '\n')
	for j := h + 1; j < len(lines) && in[j]; j++ {
		snippet = append(snippet, lines[j]...)
		if !bytes.HasSuffix(snippet, []byte("\n")) {
			snippet = append(snippet, '\n')
		}
	}
	defer func() {
		if recover() != nil {
			v, ok = "", false
		}
	}()
	var doc struct {
		X *string `yaml:"x"`
	}
	if err := yaml.Unmarshal(snippet, &doc); err != nil || doc.X == nil {
		return "", false
	}
	return *doc.X, true
}

// indent returns the number of spaces and tabs a line starts with.
func indent(l []byte) int {
	return len(l) - len(bytes.TrimLeft(l, " \t"))
}
