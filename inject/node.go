package inject

import (
	"fmt"
	"strconv"

	"envoy-lifecycle/yamledit"

	yaml "go.yaml.in/yaml/v3"
)

// Helpers over the yaml.v3 node tree. Edits are made only where the value
// differs, and by the rules of yamledit: an existing scalar is replaced,
// never changed, and a mapping that keeps its keys is edited key by key, so
// that yamledit splices the smallest text.

// shapeError is a field inject must read or edit that has the wrong shape.
// It becomes an *Error with the file name and ExitManifest.
type shapeError struct {
	line int
	msg  string
}

func (e *shapeError) Error() string { return e.msg }

func shapeErrorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &shapeError{line: line, msg: fmt.Sprintf(format, args...)}
}

func str(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func integer(v int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(v)}
}

func mapping(kv ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: kv}
}

func sequence(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

func strings2seq(vs []string) *yaml.Node {
	s := sequence()
	for _, v := range vs {
		s.Content = append(s.Content, str(v))
	}
	return s
}

// field is one key and value of a mapping built by obj.
type field struct {
	key   string
	value *yaml.Node
}

// obj builds a mapping from fields, in order.
func obj(fields ...field) *yaml.Node {
	m := mapping()
	for _, f := range fields {
		m.Content = append(m.Content, str(f.key), f.value)
	}
	return m
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// lookup returns the value of key in mapping m, or nil. A value that is an
// alias, and a mapping with a merge key, are refused: editing through them
// would change other parts of the document.
func lookup(m *yaml.Node, key string) (*yaml.Node, error) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	var found *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if yamledit.IsMergeKey(k) {
			return nil, shapeErrorf(k, "merge keys (<<) are not supported here")
		}
		if k.Kind == yaml.ScalarNode && k.Value == key && found == nil {
			if v.Kind == yaml.AliasNode {
				return nil, shapeErrorf(v, "%s: aliases (*%s) are not supported here", key, v.Value)
			}
			found = v
		}
	}
	return found, nil
}

// scalarAt returns the string value of key in m, or "" when absent or not a
// scalar.
func scalarAt(m *yaml.Node, key string) string {
	v, err := lookup(m, key)
	if err != nil || v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
		return ""
	}
	return v.Value
}

// mapAt returns the mapping under key. With create, a missing or null value
// becomes an empty mapping appended to m. Anything else is a shape error.
func mapAt(m *yaml.Node, key, what string, create bool) (*yaml.Node, error) {
	return collectionAt(m, key, what, mapping(), "a mapping", create)
}

// seqAt is mapAt for sequences.
func seqAt(m *yaml.Node, key, what string, create bool) (*yaml.Node, error) {
	return collectionAt(m, key, what, sequence(), "a list", create)
}

// collectionAt returns the node under key if it is of empty's kind; with
// create, a missing or null value is replaced by empty.
func collectionAt(m *yaml.Node, key, what string, empty *yaml.Node, want string, create bool) (*yaml.Node, error) {
	v, err := lookup(m, key)
	if err != nil {
		return nil, err
	}
	switch {
	case v != nil && v.Kind == empty.Kind:
		return v, nil
	case v != nil && !isNull(v):
		return nil, shapeErrorf(v, "%s: want %s, got %s", what, want, describe(v))
	case !create:
		return nil, nil
	}
	set(m, key, empty)
	return empty, nil
}

// set makes key's value in m equal to v. An equal value is left alone (with
// its style and comments); a different one is replaced, keeping the key and
// its comments; a missing key is appended.
func set(m *yaml.Node, key string, v *yaml.Node) {
	setBefore(m, key, v, "")
}

// merge returns what replaces old by nw: old itself, edited key by key,
// when both are mappings with the same keys; else nw in old's style.
func merge(old, nw *yaml.Node) *yaml.Node {
	if old.Kind != yaml.MappingNode || nw.Kind != yaml.MappingNode || len(old.Content) != len(nw.Content) {
		adoptStyle(old, nw)
		return nw
	}
	for i := 0; i+1 < len(nw.Content); i += 2 {
		if v, err := lookup(old, nw.Content[i].Value); err != nil || v == nil {
			adoptStyle(old, nw)
			return nw
		}
	}
	for i := 0; i+1 < len(nw.Content); i += 2 {
		set(old, nw.Content[i].Value, nw.Content[i+1])
	}
	return old
}

// setBefore is set, but a missing key is inserted before the key named
// before when there is one.
func setBefore(m *yaml.Node, key string, v *yaml.Node, before string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			if old := m.Content[i+1]; !yamledit.Equal(old, v) {
				m.Content[i+1] = merge(old, v)
			}
			return
		}
	}
	at := len(m.Content)
	if before != "" {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == before {
				at = i
				break
			}
		}
	}
	m.Content = append(m.Content[:at], append([]*yaml.Node{str(key), v}, m.Content[at:]...)...)
}

// setAfter is set, but a missing key is inserted right after the key named
// after when there is one.
func setAfter(m *yaml.Node, key string, v *yaml.Node, after string) {
	next := ""
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == after && i+2 < len(m.Content) {
			next = m.Content[i+2].Value
			break
		}
	}
	if next == "" || next == key {
		set(m, key, v)
		return
	}
	setBefore(m, key, v, next)
}

// remove deletes key from m.
func remove(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// named returns the item of seq whose name is name, or nil. Items must be
// mappings.
func named(seq *yaml.Node, name, what string) (*yaml.Node, error) {
	if seq == nil {
		return nil, nil
	}
	for _, it := range seq.Content {
		if it.Kind != yaml.MappingNode {
			return nil, shapeErrorf(it, "%s: want a mapping per item, got %s", what, describe(it))
		}
		if scalarAt(it, "name") == name {
			return it, nil
		}
	}
	return nil, nil
}

// describe names a node's kind for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "nothing"
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	}
	return fmt.Sprintf("%s %s", n.ShortTag(), n.Value)
}

// adoptStyle gives the new tree nw the flow style and quoting of the tree
// old it replaces, where their shapes match: a hook written as
// ["/bin/sh", "-c", "..."] stays on one line.
func adoptStyle(old, nw *yaml.Node) {
	if old == nil || nw == nil || old.Kind != nw.Kind {
		return
	}
	const quoted = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
	switch nw.Kind {
	case yaml.ScalarNode:
		if nw.Style == 0 && nw.ShortTag() == "!!str" {
			nw.Style = old.Style & quoted
		}
	case yaml.SequenceNode:
		nw.Style |= old.Style & yaml.FlowStyle
		for i, c := range nw.Content {
			if len(old.Content) > 0 {
				adoptStyle(old.Content[min(i, len(old.Content)-1)], c)
			}
		}
	case yaml.MappingNode:
		nw.Style |= old.Style & yaml.FlowStyle
		for i := 0; i+1 < len(nw.Content); i += 2 {
			if v, err := lookup(old, nw.Content[i].Value); err == nil {
				adoptStyle(v, nw.Content[i+1])
			}
		}
	}
}
