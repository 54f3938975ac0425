package yamledit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	yaml "go.yaml.in/yaml/v3"
)

// New text is written by yaml.v3 (block or flow, as found where it goes),
// or as JSON in a JSON document, and then indented to its place.

// style is how a YAML document is indented.
type style struct {
	indent  int  // spaces per level
	compact bool // "- " list items at their key's indentation (kubectl)
}

// detectStyle guesses the style of a YAML text: the indentation step after
// the first "key:" line that opens a mapping, and whether list items line
// up with their key. It defaults to 2 and compact, kubectl's output.
func detectStyle(body []byte) style {
	st := style{indent: 0, compact: true}
	seqKnown := false
	prevIndent, prevOpens := -1, false
	for len(body) > 0 {
		raw := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			raw, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
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

// block writes n in block style (flow where n says so), as lines without
// indentation or line breaks.
func (r *renderer) block(n *yaml.Node) (lines []string, err error) {
	if r.d.JSON {
		t, err := r.json(n, "", false, true)
		return []string{t}, err
	}
	key := fingerprint(n, r.st)
	if l, ok := blockCache.Load(key); ok {
		return slices.Clone(l.([]string)), nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = r.d.unfaithful(nil, fmt.Sprintf("cannot encode YAML: %v", p))
		}
	}()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(r.st.indent)
	if r.st.compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(n); err != nil {
		return nil, r.d.unfaithful(nil, "cannot encode YAML: "+err.Error())
	}
	if err := enc.Close(); err != nil {
		return nil, r.d.unfaithful(nil, "cannot encode YAML: "+err.Error())
	}
	lines = strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if blockCacheSize.Add(1) < maxBlockCache {
		blockCache.Store(key, slices.Clone(lines))
	}
	return lines, nil
}

// blockCache holds the text yaml.v3 wrote for a tree and style: a large
// manifest gets the same new entries in every workload, and an encoder
// costs more than the rest of an edit.
var (
	blockCache     sync.Map // fingerprint → []string
	blockCacheSize atomic.Int64
)

const maxBlockCache = 4096

// fingerprint returns a key that two trees share only when yaml.v3 writes
// them the same way in style st.
func fingerprint(n *yaml.Node, st style) string {
	b := make([]byte, 0, 256)
	b = strconv.AppendInt(b, int64(st.indent), 10)
	b = strconv.AppendBool(b, st.compact)
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		b = append(b, byte(n.Kind), byte(n.Style>>8), byte(n.Style))
		for _, s := range []string{n.Tag, n.Value, n.Anchor, n.HeadComment, n.LineComment, n.FootComment} {
			b = strconv.AppendInt(b, int64(len(s)), 10)
			b = append(b, ':')
			b = append(b, s...)
		}
		b = append(b, '(')
		for _, c := range n.Content {
			walk(c)
		}
		b = append(b, ')')
	}
	walk(n)
	return string(b)
}

// items writes list items in block style, each starting with "-" and its
// content off columns past it.
func (r *renderer) items(items []*yaml.Node, off int) ([]string, error) {
	var out []string
	for _, it := range items {
		lines, err := r.block(&yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{it}})
		if err != nil {
			return nil, err
		}
		first := lines[0]
		at := len(first) - len(strings.TrimLeft(first[1:], " ")) // where the content starts
		if len(first) == 1 {
			out = append(out, lines...)
			continue
		}
		out = append(out, "-"+strings.Repeat(" ", off-1)+first[at:])
		for _, l := range lines[1:] {
			if len(l)-len(strings.TrimLeft(l, " ")) >= at {
				l = strings.Repeat(" ", off) + l[at:]
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// flowNode returns a copy of n in flow style: collections in brackets,
// multi-line strings double-quoted.
func flowNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		c.Style |= yaml.FlowStyle
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, x := range n.Content {
			c.Content[i] = flowNode(x)
		}
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "\n") || n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			c.Style = yaml.DoubleQuotedStyle
		}
	}
	return &c
}

// inline writes n for a place inside a flow collection (or as a value on
// its key's line): JSON in a JSON document, else YAML flow. base is the
// indentation of the line it goes on; pretty writes a JSON collection one
// entry a line; spaced puts a space after "," and ":".
func (r *renderer) inline(n *yaml.Node, base string, pretty, spaced bool) (string, error) {
	if r.d.JSON {
		return r.json(n, base, pretty, spaced)
	}
	lines, err := r.block(flowNode(n))
	if err != nil {
		return "", err
	}
	return strings.Join(lines, r.nl+base+strings.Repeat(" ", r.st.indent)), nil
}

// flowEntry writes one entry (key and value, or an item) of a flow
// collection.
func (r *renderer) flowEntry(entry []*yaml.Node, base string, pretty, spaced bool) (string, error) {
	if len(entry) == 1 {
		return r.inline(entry[0], base, pretty, spaced)
	}
	if r.d.JSON {
		if entry[0].Kind != yaml.ScalarNode {
			return "", r.d.unfaithful(nil, "a JSON key that is not a string")
		}
		var b bytes.Buffer
		writeJSONString(&b, entry[0].Value)
		b.WriteByte(':')
		if spaced || pretty {
			b.WriteByte(' ')
		}
		v, err := r.json(entry[1], base, pretty, spaced)
		return b.String() + v, err
	}
	t, err := r.inline(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: entry}, base, false, true)
	if err != nil {
		return "", err
	}
	// "{k: v}" without its braces.
	return strings.TrimSuffix(strings.TrimPrefix(t, "{"), "}"), nil
}

// json writes n as JSON: one entry a line indented by the document's unit
// past base when pretty, else on one line.
func (r *renderer) json(n *yaml.Node, base string, pretty, spaced bool) (string, error) {
	var b bytes.Buffer
	st := jsonStyle{spaced: spaced}
	if pretty && r.jsonIndent != "" {
		st.indent = r.jsonIndent
	}
	if err := writeJSON(&b, n, st, 0); err != nil {
		return "", r.d.unfaithful(nil, err.Error())
	}
	return strings.ReplaceAll(b.String(), "\n", r.nl+base), nil
}

// jsonStyle is how writeJSON lays a collection out: one entry a line
// indented by indent, or on one line ("" indent), with spaces after ","
// and ":" when spaced.
type jsonStyle struct {
	indent string
	spaced bool
}

func writeJSON(b *bytes.Buffer, n *yaml.Node, st jsonStyle, depth int) error {
	newline := func(d int) {
		if st.indent != "" {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(st.indent, d))
		}
	}
	switch n.Kind {
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
				if st.spaced && st.indent == "" {
					b.WriteByte(' ')
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
				if st.spaced || st.indent != "" {
					b.WriteByte(' ')
				}
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
	return errors.New("cannot encode JSON: an alias or a document")
}

func writeJSONString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
}

func jsonValid(b []byte) bool { return json.Valid(b) }
