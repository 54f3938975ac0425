// Package yamledit edits YAML and JSON text in place. Split cuts a stream
// into documents on its text, Parse reads one into a yaml.v3 node tree, the
// caller edits the tree, and Bytes writes the document back with each edit
// spliced into the original bytes at the position the parser gave, in the
// indentation found there. Bytes outside the edits are never re-encoded.
//
// An edit is one of: a key or list item added to or removed from an
// existing mapping or list (Content changed), or a value replaced by a new
// node. Scalars that were parsed must not be changed in place: replace
// them. New nodes (Line 0) are written as yaml.v3 writes them, or as JSON
// in a JSON document.
package yamledit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Error is a document that cannot be read, or an edit that cannot be
// written faithfully, at a line of the stream.
type Error struct {
	Line int // from 1; 0 when unknown
	Msg  string
	Err  error // ErrUnfaithful, or nil
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// ErrUnfaithful is wrapped by the errors of Bytes when an edit cannot be
// spliced into the text so that it reads back as the edited tree.
var ErrUnfaithful = errors.New("cannot splice the edit into this layout")

// ErrLineBreaks is wrapped by the errors of Bytes for an edited document
// with line breaks other than LF and CRLF (a lone CR, NEL, LS or PS):
// YAML counts lines by them, and the positions the parser gives would not
// match the text.
var ErrLineBreaks = errors.New("line breaks other than LF and CRLF")

// Doc is one document of a stream.
type Doc struct {
	// Root is the document's DocumentNode after Parse; nil when the
	// document holds no node (only comments) or is not parsed.
	Root *yaml.Node
	// Line is the line of the document's first line of content in the
	// stream, from 1. Node lines are relative to it: Line + n.Line - 1.
	Line int
	// JSON reports a document that is JSON; new text in it is JSON.
	JSON bool

	prefix []byte // a BOM, directives, comments and the "---" line
	body   []byte // the document itself
	suffix []byte // a "..." end marker and the comments after it

	// orig holds each parsed collection's Content as parsed, to tell
	// what the edits changed.
	orig map[*yaml.Node][]*yaml.Node
	// lines holds the offsets in body where each line starts, and
	// asciiEnd where each line's ASCII prefix ends (index builds both).
	lines, asciiEnd []int
	// oneLine caches onOneLine: 0 unknown, 1 yes, 2 no.
	oneLine int8
}

// Text returns the document's text as it was read.
func (d *Doc) Text() []byte { return concat(d.prefix, d.body, d.suffix) }

// AppendText appends the document's text as it was read to dst.
func (d *Doc) AppendText(dst []byte) []byte {
	return append(append(append(dst, d.prefix...), d.body...), d.suffix...)
}

// Body returns the document without the comments and markers around it.
// The caller must not change it.
func (d *Doc) Body() []byte { return d.body }

// Release drops the tree, for a document that will not be edited.
func (d *Doc) Release() { d.Root, d.orig = nil, nil }

var bom = []byte("\ufeff")

// Split cuts src into documents at "---" lines. Comments and blank lines
// before a "---" stay with the document they follow. A document that is a
// stream of JSON values back to back (kubectl get -o json on several
// objects) becomes one document per value. Concatenating every Text gives
// src back.
func Split(src []byte) []*Doc {
	hasBOM := bytes.HasPrefix(src, bom)
	docs := split(bytes.TrimPrefix(src, bom))
	var out []*Doc
	for _, d := range docs {
		out = append(out, splitJSONStream(d)...)
	}
	if hasBOM {
		out[0].prefix = concat(bom, out[0].prefix)
	}
	return out
}

// lineKind classifies a line of a YAML stream.
func lineKind(line []byte) (start, end, meta bool) {
	l := bytes.TrimRight(line, "\r\n")
	marker := func(m string) bool {
		return bytes.HasPrefix(l, []byte(m)) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t')
	}
	t := bytes.TrimLeft(l, " \t")
	return marker("---"), marker("..."), len(t) == 0 || t[0] == '#' || l[0] == '%'
}

// markerContent reports whether a "---" line carries content after the
// marker (other than a comment).
func markerContent(line []byte) bool {
	rest := bytes.TrimSpace(bytes.TrimRight(line, "\r\n")[3:])
	return len(rest) > 0 && rest[0] != '#'
}

func split(src []byte) []*Doc {
	var docs []*Doc
	chunk, body, suffix := 0, -1, -1 // offsets into src
	chunkLine, bodyLine, lineNo := 1, 1, 1
	content := false
	closeAt := func(end int) {
		b := body
		if b < 0 {
			b, bodyLine = chunk, chunkLine
		}
		s := suffix
		if s < 0 {
			s = end
		}
		docs = append(docs, &Doc{prefix: src[chunk:b], body: src[b:s], suffix: src[s:end], Line: bodyLine})
	}
	for off := 0; off < len(src); {
		n := bytes.IndexByte(src[off:], '\n') + 1
		if n == 0 {
			n = len(src) - off
		}
		line := src[off : off+n]
		start, end, meta := lineKind(line)
		switch {
		case start:
			if content || body >= 0 || suffix >= 0 {
				closeAt(off)
				chunk, chunkLine, suffix, content = off, lineNo, -1, false
			}
			body, bodyLine = off+n, lineNo+1
			if markerContent(line) {
				// "--- !!map" or "--- |": the marker line is part of the body.
				body, bodyLine, content = off, lineNo, true
			}
		case end:
			if suffix < 0 {
				suffix = off
			}
		case suffix >= 0:
			// after "...": only comments may follow before the next "---"
		case !meta:
			content = true
		}
		off += n
		lineNo++
	}
	closeAt(len(src))
	return docs
}

// splitJSONStream cuts a document made of several JSON values back to back
// into one document per value; any other document comes back alone.
func splitJSONStream(d *Doc) []*Doc {
	t := bytes.TrimLeft(d.body, " \t\r\n")
	if len(t) == 0 || t[0] != '{' || len(d.suffix) > 0 {
		return []*Doc{d}
	}
	dec := json.NewDecoder(bytes.NewReader(d.body))
	var starts []int
	for {
		var v json.RawMessage
		before := skipSpace(d.body, int(dec.InputOffset()))
		if before == len(d.body) {
			break
		}
		if err := dec.Decode(&v); err != nil {
			return []*Doc{d}
		}
		starts = append(starts, before)
	}
	if len(starts) < 2 {
		return []*Doc{d}
	}
	out := make([]*Doc, len(starts))
	line := d.Line
	for i := range starts {
		b, e := 0, len(d.body)
		if i > 0 {
			b = starts[i]
		}
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		out[i] = &Doc{body: d.body[b:e], Line: line}
		line += bytes.Count(out[i].body, []byte("\n"))
	}
	out[0].prefix = d.prefix
	return out
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// Parse reads the document's tree into Root and sets JSON. A document
// holding only comments leaves Root nil. The error is an *Error.
func (d *Doc) Parse() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Line: d.Line, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(d.body))
	var n yaml.Node
	switch err := dec.Decode(&n); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return SyntaxError(d.Line, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return SyntaxError(d.Line, err)
	default:
		return &Error{Line: d.Line + extra.Line - 1, Msg: "a second document without a \"---\" line before it"}
	}
	if e := CheckKeys(d.Line, &n); e != nil {
		return e
	}
	d.Root = &n
	d.JSON = json.Valid(d.body)
	d.orig = map[*yaml.Node][]*yaml.Node{}
	d.snapshot(&n)
	return nil
}

func (d *Doc) snapshot(n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.orig[n] = append([]*yaml.Node(nil), n.Content...)
	}
	for _, c := range n.Content {
		d.snapshot(c)
	}
}

// SyntaxError turns a yaml.v3 error ("yaml: line 3: mapping values are not
// allowed in this context") into an *Error with the line in the stream,
// for a text whose first line is line first of the stream.
func SyntaxError(first int, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := first
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, m, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = first+n-1, m
				// yaml.v3 counts the lines of parser errors from 0 (its
				// scanner's from 1); they name where the construct began.
				if parserErrors[m] {
					line++
				}
			}
		}
	}
	return &Error{Line: line, Msg: "not valid YAML: " + msg}
}

// parserErrors are the messages of yaml.v3's parser, as opposed to its
// scanner.
var parserErrors = map[string]bool{
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

// CheckKeys refuses a mapping with a key given twice (Kubernetes' strict
// decoding refuses it too, and an edit would reach only the first), for a
// tree whose line 1 is line first of the stream.
func CheckKeys(first int, n *yaml.Node) *Error {
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if prev, dup := seen[k.Value]; dup && !IsMergeKey(k) {
				return &Error{Line: first + k.Line - 1,
					Msg: fmt.Sprintf("not valid YAML: mapping key %q already defined at line %d", k.Value, first+prev-1)}
			}
			seen[k.Value] = k.Line
		}
	}
	if n.Kind == yaml.AliasNode {
		return nil
	}
	for _, c := range n.Content {
		if e := CheckKeys(first, c); e != nil {
			return e
		}
	}
	return nil
}

// IsMergeKey reports a "<<" merge key.
func IsMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.ShortTag() == "!!merge")
}

// Equal compares two trees by meaning: kind, resolved tag, value and
// content. Styles, comments, anchors and positions are ignored.
func Equal(a, b *yaml.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || len(a.Content) != len(b.Content) {
		return false
	}
	switch a.Kind {
	case yaml.ScalarNode:
		return a.ShortTag() == b.ShortTag() && a.Value == b.Value
	case yaml.AliasNode:
		return a.Value == b.Value
	}
	for i := range a.Content {
		if !Equal(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

func concat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
