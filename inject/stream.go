package inject

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

// A manifest is split into documents on its text first, so that a document
// inject does not change is written back byte for byte. Only a changed
// document is encoded again from its node tree.

// document is one document of a manifest stream.
type document struct {
	prefix []byte // directives, comments and the "---" line before body
	body   []byte // the document itself
	suffix []byte // a "..." end marker and the comments after it
	line   int    // line number of body's first line, from 1

	root *yaml.Node // a DocumentNode; nil when body holds no node
	json bool       // body is JSON: a changed document is written as JSON
	// marker: body starts with a "---" line that holds content ("--- !!map").
	marker bool
	// before is root encoded before any edit, to tell whether it changed;
	// nil for a document that holds no workload.
	before []byte
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

// split cuts src into documents at "---" lines. Comments and blank lines
// before a "---" stay with the document they follow.
func split(src []byte) []*document {
	var docs []*document
	chunk, body, suffix := 0, -1, -1 // offsets into src
	chunkLine, bodyLine, lineNo := 1, 1, 1
	content, marker := false, false
	closeAt := func(end int) {
		b := body
		if b < 0 {
			b, bodyLine = chunk, chunkLine
		}
		s := suffix
		if s < 0 {
			s = end
		}
		docs = append(docs, &document{prefix: src[chunk:b], body: src[b:s], suffix: src[s:end], line: bodyLine, marker: marker})
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
			body, bodyLine, marker = off+n, lineNo+1, false
			if markerContent(line) {
				body, bodyLine, marker, content = off, lineNo, true, true
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

// parse fills root and json, and reports a parse error with its line in
// the file.
func (d *document) parse(file string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Code: ExitManifest, File: file, Line: d.line, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(d.body))
	var n yaml.Node
	switch err := dec.Decode(&n); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return d.yamlError(file, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return d.yamlError(file, err)
	default:
		return &Error{Code: ExitManifest, File: file, Line: d.line + extra.Line - 1, Msg: "a second document without a \"---\" line before it"}
	}
	if e := checkKeys(file, d.line, &n); e != nil {
		return e
	}
	d.root = &n
	d.json = json.Valid(d.body)
	return nil
}

// yamlError turns a yaml.v3 error ("yaml: line 3: mapping values are not
// allowed in this context") into an *Error with the line in the file.
func (d *document) yamlError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := d.line
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, m, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = d.line+n-1, m
				// yaml.v3 counts the lines of parser errors from 0 (its
				// scanner's from 1); they name where the construct began.
				if parserErrors[m] {
					line++
				}
			}
		}
	}
	return &Error{Code: ExitManifest, File: file, Line: line, Msg: "not valid YAML: " + msg}
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

// checkKeys refuses a mapping with a key given twice: Kubernetes' strict
// decoding refuses it too, and inject would edit only the first.
func checkKeys(file string, offset int, n *yaml.Node) *Error {
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			if prev, dup := seen[k.Value]; dup && !isMergeKey(k) {
				return &Error{Code: ExitManifest, File: file, Line: offset + k.Line - 1,
					Msg: fmt.Sprintf("not valid YAML: mapping key %q already defined at line %d", k.Value, offset+prev-1)}
			}
			seen[k.Value] = k.Line
		}
	}
	if n.Kind == yaml.AliasNode {
		return nil
	}
	for _, c := range n.Content {
		if e := checkKeys(file, offset, c); e != nil {
			return e
		}
	}
	return nil
}

// style is how a YAML document is indented, so that a changed document
// keeps its look.
type style struct {
	indent  int  // spaces per level
	compact bool // "- " list items at their key's indentation (kubectl)
}

// detectStyle guesses the style of a YAML text: the indentation step after
// the first "key:" line that opens a mapping, and whether list items line up
// with their key. It defaults to 2 and compact, kubectl's output.
func detectStyle(body []byte) style {
	st := style{indent: 0, compact: true}
	seqKnown := false
	prevIndent, prevOpens := -1, false
	for _, raw := range bytes.Split(body, []byte("\n")) {
		line := bytes.TrimRight(raw, "\r")
		t := bytes.TrimLeft(line, " ")
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		ind := len(line) - len(t)
		if prevOpens && ind >= prevIndent {
			item := bytes.HasPrefix(t, []byte("- ")) || bytes.Equal(t, []byte("-"))
			switch {
			case item && !seqKnown:
				st.compact, seqKnown = ind == prevIndent, true
				if ind > prevIndent && st.indent == 0 {
					st.indent = ind - prevIndent
				}
			case !item && ind > prevIndent && st.indent == 0:
				st.indent = ind - prevIndent
			}
		}
		if st.indent > 0 && seqKnown {
			break
		}
		// A "key:" line with nothing after the colon opens a block.
		code := t
		if i := bytes.Index(code, []byte(" #")); i >= 0 {
			code = code[:i]
		}
		code = bytes.TrimRight(code, " \t")
		prevIndent, prevOpens = ind, bytes.HasSuffix(code, []byte(":"))
		if bytes.HasPrefix(t, []byte("- ")) {
			prevIndent += 2 // a mapping inside an item is indented past "- "
		}
	}
	if st.indent < 2 || st.indent > 8 {
		st.indent = 2
	}
	return st
}

// encodeYAML writes root in the given style, and checks that the result
// reads back as the same tree: yaml.v3 can mis-place comments in rare
// layouts, and inject never writes a document that means something else.
func encodeYAML(root *yaml.Node, st style) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot encode YAML: %v", r)
		}
	}()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(st.indent)
	if st.compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("cannot encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot encode YAML: %w", err)
	}
	var back yaml.Node
	if err := yaml.Unmarshal(b.Bytes(), &back); err != nil {
		return nil, fmt.Errorf("cannot encode YAML faithfully: %w", err)
	}
	if !equal(root, &back) {
		return nil, errors.New("cannot encode YAML faithfully: the document reads back differently")
	}
	return b.Bytes(), nil
}

// encodeYAMLRaw encodes root without checks, to compare it before and
// after the edits.
func encodeYAMLRaw(root *yaml.Node) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot encode YAML: %v", r)
		}
	}()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// changed reports whether root differs from what was parsed. A document
// without a workload (before is nil) never changes.
func (d *document) changed() bool {
	if d.root == nil || d.before == nil {
		return false
	}
	after, err := encodeYAMLRaw(d.root)
	return err != nil || !bytes.Equal(d.before, after)
}

// render returns the document's text: verbatim when unchanged, else the
// prefix and suffix verbatim around the re-encoded body.
func (d *document) render(file string) ([]byte, error) {
	if !d.changed() {
		return concat(d.prefix, d.body, d.suffix), nil
	}
	var body []byte
	var err error
	if d.json {
		body, err = encodeJSON(d.root, detectJSONIndent(d.body))
		if err == nil && bytes.HasSuffix(d.body, []byte("\n")) {
			body = append(body, '\n')
		}
	} else {
		body, err = encodeYAML(d.root, detectStyle(d.body))
		if err == nil && d.marker {
			body = append([]byte("---\n"), body...)
		}
	}
	if err != nil {
		return nil, &Error{Code: ExitSoftware, File: file, Line: d.line, Msg: err.Error()}
	}
	crlf := bytes.Contains(d.body, []byte("\r\n"))
	if !d.json {
		// Keep the original text of the lines the edit did not touch
		// (blank lines, spacing before comments, block scalars). The
		// result must read back as the same tree as the re-encoding; if
		// it does not (a block scalar whose content changed, or a layout
		// restoreLines misreads), it is tried again without restoring
		// block scalars, and then the plain re-encoding is written.
		for _, blocks := range []bool{true, false} {
			if kept := restoreLines(d.body, body, crlf, blocks); sameYAML(kept, d.root) {
				return concat(d.prefix, kept, d.suffix), nil
			}
		}
	}
	if crlf {
		body = bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
	}
	return concat(d.prefix, body, d.suffix), nil
}

// sameYAML reports whether text is one YAML document that reads back as
// the tree root.
func sameYAML(text []byte, root *yaml.Node) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var back, extra yaml.Node
	if err := dec.Decode(&back); err != nil {
		return false
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return false
	}
	return equal(root, &back)
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// detectJSONIndent returns the indentation unit of a JSON text: the
// whitespace opening its second line, or "" for JSON on one line.
func detectJSONIndent(body []byte) string {
	t := bytes.TrimSpace(body)
	i := bytes.IndexByte(t, '\n')
	if i < 0 {
		return ""
	}
	rest := t[i+1:]
	n := len(rest) - len(bytes.TrimLeft(rest, " \t"))
	if n == 0 {
		return "  "
	}
	return string(rest[:n])
}

// encodeJSON writes a tree read from JSON back as JSON, keeping key order.
// indent "" writes it on one line.
func encodeJSON(root *yaml.Node, indent string) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, root, jsonStyle{indent: indent}, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// jsonStyle is how writeJSON lays a collection out: one item per line
// indented by indent, or on one line, with spaces after "," and ":" when
// inline (a collection that was on one line) and none when indent is "".
type jsonStyle struct {
	indent string
	inline bool
}

func (st jsonStyle) pretty() bool { return st.indent != "" && !st.inline }

func writeJSON(b *bytes.Buffer, n *yaml.Node, st jsonStyle, depth int) error {
	if st.indent != "" && n.Line > 0 && onLine(n, n.Line) {
		st.inline = true // a collection that was on one line stays on one line
	}
	space := func() {
		if st.indent != "" {
			b.WriteByte(' ')
		}
	}
	newline := func(d int) {
		if st.pretty() {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(st.indent, d))
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return errors.New("cannot encode JSON: empty document")
		}
		return writeJSON(b, n.Content[0], st, depth)
	case yaml.MappingNode, yaml.SequenceNode:
		open, close, step := byte('{'), byte('}'), 2
		if n.Kind == yaml.SequenceNode {
			open, close, step = '[', ']', 1
		}
		b.WriteByte(open)
		if len(n.Content) == 0 {
			b.WriteByte(close)
			return nil
		}
		for i := 0; i+step-1 < len(n.Content); i += step {
			if i > 0 {
				b.WriteByte(',')
				if st.inline {
					space()
				}
			}
			newline(depth + 1)
			if step == 2 {
				k := n.Content[i]
				if k.Kind != yaml.ScalarNode {
					return errors.New("cannot encode JSON: a mapping key that is not a string")
				}
				writeJSONString(b, k.Value)
				b.WriteByte(':')
				space()
			}
			if err := writeJSON(b, n.Content[i+step-1], st, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte(close)
		return nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			b.WriteString("null")
			return nil
		case "!!bool":
			if n.Value == "true" || n.Value == "false" {
				b.WriteString(n.Value)
				return nil
			}
		case "!!int", "!!float":
			if json.Valid([]byte(n.Value)) {
				b.WriteString(n.Value)
				return nil
			}
		}
		writeJSONString(b, n.Value)
		return nil
	}
	return errors.New("cannot encode JSON: " + describe(n))
}

func writeJSONString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
}

// onLine reports whether n and everything in it was read from line.
func onLine(n *yaml.Node, line int) bool {
	if n.Line != line {
		return false
	}
	for _, c := range n.Content {
		if !onLine(c, line) {
			return false
		}
	}
	return true
}
