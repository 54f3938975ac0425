// Package edittest checks the promise of yamledit from the outside: every
// line of the input that is not on an edit path is in the output,
// unchanged and in order. It finds the edit paths by comparing the trees
// the two texts parse to, not from yamledit's splices. Test support only.
package edittest

import (
	"bytes"
	"fmt"

	"envoy-lifecycle/yamledit"

	yaml "go.yaml.in/yaml/v3"
)

// Missing returns the lines of in that are on no edit path and yet are not
// in out, unchanged and in order. in and out must hold the same number of
// documents, each of which parses.
func Missing(in, out []byte) ([]string, error) {
	din, dout := yamledit.Split(in), yamledit.Split(out)
	if len(din) != len(dout) {
		return nil, fmt.Errorf("%d documents in, %d out", len(din), len(dout))
	}
	allowed := map[int]bool{} // lines of in, from 1
	for i := range din {
		a, b := din[i], dout[i]
		if bytes.Equal(a.Text(), b.Text()) {
			continue
		}
		if err := a.Parse(); err != nil {
			return nil, fmt.Errorf("input document %d: %w", i, err)
		}
		if err := b.Parse(); err != nil {
			return nil, fmt.Errorf("output document %d: %w", i, err)
		}
		if a.Root == nil || b.Root == nil {
			return nil, fmt.Errorf("document %d: empty on one side only", i)
		}
		p := &paths{off: a.Line - 1, allowed: allowed}
		p.walk(a.Root, b.Root, bytes.Count(a.Text(), []byte("\n"))+1)
	}
	inLines, outLines := Lines(in), Lines(out)
	var missing []string
	j := 0
	for i, l := range inLines {
		if allowed[i+1] {
			continue
		}
		// The last line may gain the line break that an entry added
		// after it needs.
		lastNoBreak := i == len(inLines)-1 && !bytes.HasSuffix(l, []byte("\n"))
		k := j
		for k < len(outLines) && !bytes.Equal(outLines[k], l) &&
			!(lastNoBreak && bytes.Equal(bytes.TrimSuffix(bytes.TrimSuffix(outLines[k], []byte("\n")), []byte("\r")), l)) {
			k++
		}
		if k == len(outLines) {
			missing = append(missing, fmt.Sprintf("line %d: %q", i+1, l))
			continue
		}
		j = k + 1
	}
	return missing, nil
}

// Lines splits b into lines, each with its line break.
func Lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		out = append(out, b[:i])
		b = b[i:]
	}
	return out
}

// paths marks the input lines on an edit path: what holds a scalar that
// changed, an entry that went, or a flow collection whose entries changed,
// and the first entry of a block collection that got entries in front.
type paths struct {
	off     int
	allowed map[int]bool
}

func (p *paths) mark(from, to int) {
	for l := from; l <= to; l++ {
		p.allowed[p.off+l] = true
	}
}

// last returns the last line of n's subtree.
func last(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, last(c))
	}
	if n.Kind == yaml.ScalarNode {
		l += bytes.Count([]byte(n.Value), []byte("\n")) + 1
	}
	return l
}

// whole marks a node's lines, up to limit, the line of what follows it
// (a flow collection's closing bracket may be anywhere before that).
func (p *paths) whole(a *yaml.Node, limit int) {
	p.mark(a.Line, max(last(a), limit))
}

// walk compares a with b; limit is the line where what follows a starts.
func (p *paths) walk(a, b *yaml.Node, limit int) {
	if a.Kind != b.Kind || a.Kind == yaml.AliasNode && a.Value != b.Value || a.Kind != yaml.ScalarNode && a.ShortTag() != b.ShortTag() {
		p.whole(a, limit)
		return
	}
	flow := a.Style&yaml.FlowStyle != 0
	switch a.Kind {
	case yaml.DocumentNode:
		if len(a.Content) != len(b.Content) {
			p.whole(a, limit)
			return
		}
		for i := range a.Content {
			p.walk(a.Content[i], b.Content[i], limit)
		}
	case yaml.ScalarNode:
		if a.Value != b.Value || a.ShortTag() != b.ShortTag() {
			// A plain scalar may go on over lines (folded): up to what
			// follows.
			p.mark(a.Line, max(last(a), limit-1))
		}
	case yaml.MappingNode:
		keys := map[string]*yaml.Node{}
		for i := 0; i+1 < len(b.Content); i += 2 {
			keys[b.Content[i].Value] = b.Content[i+1]
		}
		for i := 0; i+1 < len(a.Content); i += 2 {
			k, v := a.Content[i], a.Content[i+1]
			next := limit
			if i+2 < len(a.Content) {
				next = a.Content[i+2].Line
			}
			w, ok := keys[k.Value]
			switch {
			case ok && (v.Kind != w.Kind || v.Style&yaml.FlowStyle != w.Style&yaml.FlowStyle || v.Tag != w.Tag || v.Anchor != w.Anchor ||
				v.Kind == yaml.ScalarNode && (v.Value != w.Value || v.ShortTag() != w.ShortTag())):
				// A new value (of a new kind or tag, or a scalar) may
				// start on its key's line, where the old one's tag was.
				p.mark(k.Line, max(last(v), next))
			case ok:
				if v.Line == k.Line && !yamledit.Equal(v, w) {
					// A changed collection whose tag or anchor is on its
					// key's line ("key: !tag" then the entries below).
					p.mark(k.Line, k.Line)
				}
				p.walk(v, w, next)
			default:
				p.mark(k.Line, max(last(v), next))
			}
		}
		if len(a.Content) != len(b.Content) {
			p.grown(a, flow, limit)
		}
	case yaml.SequenceNode:
		n, m := len(a.Content), len(b.Content)
		next := func(i int) int {
			if i+1 < n {
				return a.Content[i+1].Line
			}
			return limit
		}
		switch {
		case n == m:
			for i := range a.Content {
				p.walk(a.Content[i], b.Content[i], next(i))
			}
		case n < m && prefix(a.Content, b.Content):
			p.grown(a, flow, limit)
		case n < m:
			for i := range a.Content {
				p.walk(a.Content[i], b.Content[m-n+i], next(i))
			}
			p.grown(a, flow, limit)
		default:
			p.whole(a, limit)
		}
	}
}

// grown marks what a collection that got entries may change: a flow
// collection's lines, a block one's first entry (a new one may go right
// after its "- ").
func (p *paths) grown(a *yaml.Node, flow bool, limit int) {
	switch {
	case flow:
		p.whole(a, limit)
	case len(a.Content) > 0:
		p.mark(a.Content[0].Line, a.Content[0].Line)
	}
}

func prefix(a, b []*yaml.Node) bool {
	for i := range a {
		if !yamledit.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
