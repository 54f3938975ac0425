package yamledit

import (
	"bytes"
	"slices"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Positions in the body. yaml.v3 gives each node the line and column (in
// characters, from 1) where it starts: a scalar's first character, or its
// tag or anchor; a block mapping's first key; a block list's first "-"; a
// flow collection's bracket; an empty value right after its key's ":".
// It gives no end, so ends are found by scanning the text from the start
// with the node's style in hand.

// index builds the line table: where each line starts, and where its
// ASCII prefix ends. One pass; every position lookup after it is a table
// lookup or a binary search, so that the work per edit does not grow with
// the length of the document or of its lines (minified JSON is one line).
func (d *Doc) index() {
	if d.lines != nil {
		return
	}
	d.lines = make([]int, 1, bytes.Count(d.body, []byte("\n"))+1)
	d.asciiEnd = make([]int, 0, cap(d.lines))
	ascii := true
	for i, c := range d.body {
		if ascii && c >= utf8.RuneSelf {
			d.asciiEnd, ascii = append(d.asciiEnd, i), false
		}
		if c == '\n' {
			if ascii {
				d.asciiEnd = append(d.asciiEnd, i)
			}
			d.lines, ascii = append(d.lines, i+1), true
		}
	}
	if ascii {
		d.asciiEnd = append(d.asciiEnd, len(d.body))
	}
}

// lineStart returns the offset of line n (from 1) of the body.
func (d *Doc) lineStart(n int) int {
	d.index()
	if n-1 < len(d.lines) {
		return d.lines[n-1]
	}
	return len(d.body)
}

// start returns the offset where n begins.
func (d *Doc) start(n *yaml.Node) int {
	i := d.lineStart(n.Line)
	c := 1
	if n.Line-1 < len(d.asciiEnd) {
		// Up to the line's first non-ASCII byte a column is a byte.
		a := d.asciiEnd[n.Line-1]
		if i+n.Column-1 <= a {
			return i + n.Column - 1
		}
		c, i = 1+a-i, a
	}
	for ; c < n.Column && i < len(d.body) && d.body[i] != '\n'; c++ {
		_, size := utf8.DecodeRune(d.body[i:])
		i += size
	}
	return i
}

// line returns the index in d.lines of the line holding offset i.
func (d *Doc) line(i int) int {
	d.index()
	k, found := slices.BinarySearch(d.lines, i)
	if !found {
		k--
	}
	return k
}

// lineOf returns the offset where the line holding offset i begins.
func (d *Doc) lineOf(i int) int { return d.lines[d.line(i)] }

// lineEnd returns the offset after the line break of the line holding
// offset i, or the end of the body.
func (d *Doc) lineEnd(i int) int {
	if k := d.line(i) + 1; k < len(d.lines) {
		return d.lines[k]
	}
	return len(d.body)
}

// column returns the column (from 0, in bytes) of offset i.
func (d *Doc) column(i int) int { return i - d.lineOf(i) }

// firstOnLine reports whether only spaces come before offset i on its line.
func (d *Doc) firstOnLine(i int) bool {
	for i > 0 && d.body[i-1] == ' ' {
		i--
	}
	return i == 0 || d.body[i-1] == '\n'
}

// indentOf returns the number of spaces that open the line at offset ls.
func (d *Doc) indentOf(ls int) int {
	n := 0
	for ls+n < len(d.body) && d.body[ls+n] == ' ' {
		n++
	}
	return n
}

// skipProps skips a node's tag and anchor ("!!str &a ") from offset i.
func (d *Doc) skipProps(i int) int {
	for i < len(d.body) && (d.body[i] == '!' || d.body[i] == '&') {
		for i < len(d.body) && !isSpace(d.body[i]) {
			i++
		}
		i = skipSpace(d.body, i)
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// end returns the offset where n ends. owner is the column of the node
// that holds it in block context (its key's, or its list's "-"); flow
// tells whether n is inside a flow collection. Collections are measured
// by their content as parsed.
func (d *Doc) end(n *yaml.Node, owner int, flow bool) (int, error) {
	s := d.start(n)
	switch n.Kind {
	case yaml.AliasNode:
		i := s + 1
		for i < len(d.body) && !isSpace(d.body[i]) && !(flow && bytes.IndexByte([]byte(",]}"), d.body[i]) >= 0) {
			i++
		}
		return i, nil
	case yaml.ScalarNode:
		return d.scalarEnd(n, s, owner, flow)
	case yaml.MappingNode, yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			return d.flowEnd(d.skipProps(s))
		}
		old := d.orig[n]
		if len(old) == 0 {
			return 0, d.unfaithful(n, "an empty block collection")
		}
		last := old[len(old)-1]
		if n.Kind == yaml.MappingNode {
			return d.end(last, d.column(d.start(old[len(old)-2])), false)
		}
		return d.end(last, d.column(s), false)
	}
	return 0, d.unfaithful(n, "a node of unknown kind")
}

func (d *Doc) unfaithful(n *yaml.Node, what string) error {
	line := d.Line
	if n != nil && n.Line > 0 {
		line += n.Line - 1
	}
	return &Error{Line: line, Msg: ErrUnfaithful.Error() + ": " + what, Err: ErrUnfaithful}
}

// flowEnd returns the offset after the bracket that closes the flow
// collection opening at i.
func (d *Doc) flowEnd(i int) (int, error) {
	b := d.body
	if i >= len(b) || (b[i] != '[' && b[i] != '{') {
		return 0, d.unfaithful(nil, "no flow collection where the parser put one")
	}
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		case '"', '\'':
			if i > 0 && !isSpace(b[i-1]) && bytes.IndexByte([]byte("[{,:"), b[i-1]) < 0 {
				continue // a quote inside a plain scalar ("it's")
			}
			j, err := d.quotedEnd(i)
			if err != nil {
				return 0, err
			}
			i = j - 1
		case '#':
			if i > 0 && isSpace(b[i-1]) {
				i = d.lineEnd(i) - 1
			}
		}
	}
	return 0, d.unfaithful(nil, "an unclosed flow collection")
}

// quotedEnd returns the offset after the quoted scalar opening at i.
func (d *Doc) quotedEnd(i int) (int, error) {
	b := d.body
	q := b[i]
	for j := i + 1; j < len(b); j++ {
		switch {
		case q == '"' && b[j] == '\\':
			j++
		case b[j] == q && q == '\'' && j+1 < len(b) && b[j+1] == '\'':
			j++
		case b[j] == q:
			return j + 1, nil
		}
	}
	return 0, d.unfaithful(nil, "an unclosed quoted scalar")
}

// scalarEnd returns the offset where scalar n, starting at s, ends.
func (d *Doc) scalarEnd(n *yaml.Node, s, owner int, flow bool) (int, error) {
	b := d.body
	i := d.skipProps(s)
	if n.Value == "" && n.ShortTag() == "!!null" && (i >= len(b) || bytes.IndexByte([]byte("~nN"), b[i]) < 0) {
		return s, nil // an empty value: nothing written
	}
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		return d.quotedEnd(i)
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return d.blockScalarEnd(i, owner)
	case flow:
		j := i
		for ; j < len(b); j++ {
			c := b[j]
			if c == ',' || c == ']' || c == '}' || (c == '#' && isSpace(b[j-1])) ||
				(c == ':' && (j+1 == len(b) || isSpace(b[j+1]) || bytes.IndexByte([]byte(",]}"), b[j+1]) >= 0)) {
				break
			}
		}
		return trimBack(b, i, j), nil
	}
	// A plain scalar in block context: to the end of the line or a
	// comment, then continuation lines indented past its owner.
	e := plainLineEnd(b, i, d.lineEnd(i))
	for next := d.lineEnd(i); next < len(b); next = d.lineEnd(next) {
		le := d.lineEnd(next)
		line := bytes.TrimRight(b[next:le], " \t\r\n")
		t := bytes.TrimLeft(line, " \t")
		if len(t) == 0 {
			continue
		}
		if d.indentOf(next) <= owner || t[0] == '#' || bytes.HasPrefix(line, []byte("---")) || bytes.HasPrefix(line, []byte("...")) {
			break
		}
		e = plainLineEnd(b, next, le)
	}
	return e, nil
}

// plainLineEnd returns where the plain text from i ends on the line ending
// at le: before a comment and trailing whitespace.
func plainLineEnd(b []byte, i, le int) int {
	j := i
	for ; j < le; j++ {
		if b[j] == '#' && j > i && (b[j-1] == ' ' || b[j-1] == '\t') {
			break
		}
	}
	return trimBack(b, i, j)
}

func trimBack(b []byte, i, j int) int {
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return j
}

// blockScalarEnd returns the offset where the block scalar whose header
// ("|", ">-", "|+2") is at i ends: after its last content line, blank
// ones included with "+" (keep), without the final line break.
func (d *Doc) blockScalarEnd(i, owner int) (int, error) {
	b := d.body
	h := i + 1
	keep, explicit := false, 0
	for ; h < len(b) && bytes.IndexByte([]byte("+-123456789"), b[h]) >= 0; h++ {
		switch c := b[h]; {
		case c == '+':
			keep = true
		case c >= '1' && c <= '9':
			explicit = int(c - '0')
		}
	}
	end := plainLineEnd(b, i, d.lineEnd(i)) // the header, without a comment
	indent := 0
	if explicit > 0 {
		indent = max(owner, 0) + explicit
	}
	for next := d.lineEnd(i); next < len(b); next = d.lineEnd(next) {
		le := d.lineEnd(next)
		blank := len(bytes.Trim(b[next:le], " \r\n")) == 0
		ind := d.indentOf(next)
		switch {
		case blank:
			if keep {
				end = next // kept: the scalar runs to this line's break
			}
			continue
		case indent == 0 && ind > owner:
			indent = ind
		case indent == 0 || ind < indent:
			return end, nil
		}
		end = trimBack(b, next, le)
	}
	return end, nil
}
