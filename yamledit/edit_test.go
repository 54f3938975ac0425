package yamledit_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envoy-lifecycle/yamledit"
	"envoy-lifecycle/yamledit/edittest"

	yaml "go.yaml.in/yaml/v3"
)

func str(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

// edit makes up to four edits in each document, chosen by sel: keys added
// at the end and at the front of mappings, items appended and prepended to
// lists, a scalar value replaced, a value replaced by a new mapping.
func edit(docs []*yamledit.Doc, sel uint8) {
	for _, d := range docs {
		if d.Root == nil {
			continue
		}
		edits, k := 0, 0
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if edits >= 4 || n.Kind == yaml.AliasNode {
				return
			}
			for _, c := range n.Content {
				walk(c)
			}
			if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
				return
			}
			k++
			key := fmt.Sprintf("zz-fuzz-%d", k)
			op := (int(sel) + k*7) % 6
			switch {
			case op == 0:
				return
			case n.Kind == yaml.MappingNode && op == 1:
				n.Content = append(n.Content, str(key), str("v"))
			case n.Kind == yaml.MappingNode && op == 2:
				n.Content = append([]*yaml.Node{str(key), &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{str("a")}}}, n.Content...)
			case n.Kind == yaml.MappingNode && op == 3 && len(n.Content) > 0:
				n.Content[1] = str("new value")
			case n.Kind == yaml.MappingNode && op == 4 && len(n.Content) > 0:
				n.Content[1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str(key), str("x\ny")}}
			case n.Kind == yaml.SequenceNode && op == 1:
				n.Content = append(n.Content, str("item"))
			case n.Kind == yaml.SequenceNode && op == 2:
				n.Content = append([]*yaml.Node{str("first"), str("--")}, n.Content...)
			case n.Kind == yaml.SequenceNode && op == 3:
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str("name"), str(key), str("value"), str("1")}})
			default:
				return
			}
			edits++
		}
		walk(d.Root)
	}
}

// render edits src and writes it back. skip reports an input that does not
// parse, or an edit yamledit refused as unfaithful.
func render(t testing.TB, src []byte, sel uint8) (out []byte, docs []*yamledit.Doc, skip bool) {
	docs = yamledit.Split(src)
	for _, d := range docs {
		if d.Parse() != nil {
			return nil, nil, true
		}
	}
	edit(docs, sel)
	for _, d := range docs {
		b, err := d.Bytes()
		if errors.Is(err, yamledit.ErrUnfaithful) || errors.Is(err, yamledit.ErrLineBreaks) {
			t.Logf("refused: %v", err)
			return nil, nil, true
		}
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		out = append(out, b...)
	}
	return out, docs, false
}

// check asserts the promise: every input line on no edit path is in the
// output unchanged, and the output reads as the edited trees.
func check(t testing.TB, src, out []byte, docs []*yamledit.Doc) {
	t.Helper()
	missing, err := edittest.Missing(src, out)
	if err != nil {
		t.Fatalf("%v\ninput:\n%s\noutput:\n%s", err, src, out)
	}
	if len(missing) > 0 {
		t.Fatalf("lines on no edit path are missing from the output:\n%s\ninput:\n%s\noutput:\n%s", strings.Join(missing, "\n"), src, out)
	}
	back := yamledit.Split(out)
	for i, d := range back {
		if err := d.Parse(); err != nil {
			t.Fatalf("output document %d: %v\n%s", i, err, out)
		}
		if !yamledit.Equal(d.Root, docs[i].Root) {
			t.Fatalf("output document %d reads back differently:\n%s", i, out)
		}
	}
}

func shapes(t testing.TB) map[string][]byte {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestShapes edits every fixture with every choice of edits: none may be
// refused, and each output keeps the promise.
func TestShapes(t *testing.T) {
	for name, src := range shapes(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for sel := range 6 {
				out, docs, skip := render(t, src, uint8(sel))
				if skip {
					t.Fatalf("sel %d: refused", sel)
				}
				check(t, src, out, docs)
			}
		})
	}
}

// FuzzEdit: on any input that parses, edits either come out keeping the
// promise or are refused with ErrUnfaithful (or ErrLineBreaks).
func FuzzEdit(f *testing.F) {
	for _, src := range shapes(f) {
		if len(src) > 16<<10 {
			continue // the long file: too slow a seed, TestShapes has it
		}
		for sel := range 6 {
			f.Add(src, uint8(sel))
		}
	}
	for _, s := range []string{"a: 1\n", "- a\n- b\n", "a: [1, 2]\n", "{\"a\": {}}", "a:\n  b: |\n    x\n\n  c: d\n", "a: &x {b: 1}\nc: *x\n", "--- |\n x\n", "a: \"multi\n  line\"\nb: c\n"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, src []byte, sel uint8) {
		out, docs, skip := render(t, src, sel)
		if skip {
			return
		}
		check(t, src, out, docs)
	})
}
