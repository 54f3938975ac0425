package yamledit

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Changed reports whether the tree differs from what Parse read: a
// collection whose entries were added, removed or replaced.
func (d *Doc) Changed() bool {
	return d.Root != nil && d.changed(d.Root)
}

func (d *Doc) changed(n *yaml.Node) bool {
	old, ok := d.orig[n]
	if !ok {
		return false
	}
	if !slices.Equal(old, n.Content) {
		return true
	}
	for _, c := range n.Content {
		if d.changed(c) {
			return true
		}
	}
	return false
}

// Bytes returns the document's text with the edits spliced in: the text
// as read when nothing changed. The result is read back and must give the
// edited tree; if it does not, the error wraps ErrUnfaithful.
func (d *Doc) Bytes() ([]byte, error) {
	text, check, err := d.Splice()
	if err != nil {
		return nil, err
	}
	if err := check(); err != nil {
		return nil, err
	}
	return text, nil
}

// Splice is Bytes with the read-back left to the caller: check reads text
// back against the edited tree, which must not change until it has run,
// and may run on another goroutine (it is most of the cost of an edit).
func (d *Doc) Splice() (text []byte, check func() error, err error) {
	if !d.Changed() {
		return d.Text(), func() error { return nil }, nil
	}
	if oddBreaks(d.body) {
		return nil, nil, &Error{Line: d.Line, Msg: "cannot edit a document with " + ErrLineBreaks.Error(), Err: ErrLineBreaks}
	}
	r := &renderer{d: d, nl: "\n", st: detectStyle(d.body), jsonIndent: detectJSONIndent(d.body)}
	if bytes.Contains(d.body, []byte("\r\n")) {
		r.nl = "\r\n"
	}
	if err := r.walk(d.Root, false); err != nil {
		return nil, nil, err
	}
	body, err := apply(d.body, r.splices)
	if err != nil {
		return nil, nil, d.unfaithful(nil, err.Error())
	}
	if d.JSON && !jsonValid(body) {
		return nil, nil, d.unfaithful(nil, "the edited JSON document is not JSON")
	}
	root, line := d.Root, d.Line
	check = func() error {
		if !readsAs(body, root) {
			return &Error{Line: line, Msg: ErrUnfaithful.Error() + ": the edited document reads back differently", Err: ErrUnfaithful}
		}
		return nil
	}
	return concat(d.prefix, body, d.suffix), check, nil
}

// oddBreaks reports a line break other than LF and CRLF.
func oddBreaks(b []byte) bool {
	for i := bytes.IndexByte(b, '\r'); i >= 0; i = bytes.IndexByte(b[i+1:], '\r') + i + 1 {
		if i+1 == len(b) || b[i+1] != '\n' {
			return true
		}
		if bytes.IndexByte(b[i+1:], '\r') < 0 {
			break
		}
	}
	return bytes.Contains(b, []byte("\u0085")) || bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029"))
}

// splice replaces body[at:end] with text.
type splice struct {
	at, end int
	text    string
}

func apply(body []byte, ss []splice) ([]byte, error) {
	slices.SortStableFunc(ss, func(a, b splice) int {
		if a.at != b.at {
			return a.at - b.at
		}
		return a.end - b.end
	})
	var out bytes.Buffer
	last := 0
	for _, s := range ss {
		if s.at < last || s.end < s.at {
			return nil, errors.New("two edits overlap")
		}
		out.Write(body[last:s.at])
		out.WriteString(s.text)
		last = s.end
	}
	out.Write(body[last:])
	return out.Bytes(), nil
}

// readsAs reports whether text is one YAML document that reads as root.
func readsAs(text []byte, root *yaml.Node) (ok bool) {
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
	return Equal(root, &back)
}

// renderer collects the splices of one document.
type renderer struct {
	d          *Doc
	nl         string // the document's line break
	st         style
	jsonIndent string
	splices    []splice
}

func (r *renderer) add(at, end int, text string) {
	r.splices = append(r.splices, splice{at, end, text})
}

func (r *renderer) walk(n *yaml.Node, flow bool) error {
	old, ok := r.d.orig[n]
	if !ok {
		return nil
	}
	flow = flow || n.Style&yaml.FlowStyle != 0
	switch n.Kind {
	case yaml.DocumentNode:
		if !slices.Equal(old, n.Content) {
			return r.d.unfaithful(n, "the document's root was replaced")
		}
		for _, c := range n.Content {
			if err := r.walk(c, false); err != nil {
				return err
			}
		}
		return nil
	case yaml.MappingNode, yaml.SequenceNode:
		return r.collection(n, old, flow)
	}
	return nil
}

// collection splices the entries added to, removed from or replaced in n,
// whose entries were old.
func (r *renderer) collection(n *yaml.Node, old []*yaml.Node, flow bool) error {
	step := 1
	if n.Kind == yaml.MappingNode {
		step = 2
	}
	idx := make(map[*yaml.Node]int, len(old)/step)
	for j := 0; j+step-1 < len(old); j += step {
		idx[old[j]] = j
	}
	kept := 0
	for i := 0; i+step-1 < len(n.Content); i += step {
		if _, ok := idx[n.Content[i]]; ok {
			kept++
		}
	}
	if kept == 0 {
		if len(old) == 0 && len(n.Content) == 0 {
			return nil
		}
		if len(old) == 0 && !flow {
			return r.d.unfaithful(n, "an empty block collection")
		}
		return r.replaceWhole(n, flow)
	}
	c := &coll{r: r, n: n, old: old, step: step, flow: flow}
	seen := make([]bool, len(old))
	prev := -1
	var pending []*yaml.Node
	for i := 0; i+step-1 < len(n.Content); i += step {
		j, ok := idx[n.Content[i]]
		if !ok {
			pending = append(pending, n.Content[i:i+step]...)
			continue
		}
		if seen[j] || j < prev {
			return r.d.unfaithful(n.Content[i], "entries moved")
		}
		seen[j] = true
		if len(pending) > 0 {
			if err := c.insert(prev, j, pending); err != nil {
				return err
			}
			pending = nil
		}
		prev = j
		var err error
		if v := n.Content[i+step-1]; step == 2 && v != old[j+1] {
			err = c.replaceValue(j, v)
		} else {
			err = r.walk(v, flow)
		}
		if err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		if err := c.insert(prev, -1, pending); err != nil {
			return err
		}
	}
	for j := 0; j < len(old); j += step {
		if !seen[j] {
			if err := c.remove(j); err != nil {
				return err
			}
		}
	}
	return nil
}

// coll is a collection being edited.
type coll struct {
	r    *renderer
	n    *yaml.Node
	old  []*yaml.Node
	step int // 2 for a mapping, 1 for a list
	flow bool
}

func (c *coll) doc() *Doc { return c.r.d }

// entryStart returns where old entry j begins: its key, its "-" in a block
// list, or the item in a flow list.
func (c *coll) entryStart(j int) int {
	d := c.doc()
	s := d.start(c.old[j])
	if c.step == 1 && !c.flow {
		i := s
		for i > 0 && isSpace(d.body[i-1]) {
			i--
		}
		if i > 0 && d.body[i-1] == '-' {
			return i - 1
		}
	}
	return s
}

// owner returns the column that holds old entry j's value in block
// context: its key's, or the list's "-".
func (c *coll) owner(j int) int {
	d := c.doc()
	if c.step == 2 {
		return d.column(d.start(c.old[j]))
	}
	return d.column(d.start(c.n))
}

// entryEnd returns where old entry j's value ends.
func (c *coll) entryEnd(j int) (int, error) {
	return c.doc().end(c.old[j+c.step-1], c.owner(j), c.flow)
}

// multiline reports a flow collection written over several lines.
func (c *coll) multiline() bool {
	d := c.doc()
	return d.lineOf(d.start(c.n)) != d.lineOf(d.start(c.old[0]))
}

// lineIndent returns the whitespace that opens the line holding offset i.
func (d *Doc) lineIndent(i int) string {
	ls := d.lineOf(i)
	j := ls
	for j < len(d.body) && (d.body[j] == ' ' || d.body[j] == '\t') {
		j++
	}
	return string(d.body[ls:j])
}

// spaced reports whether the flow text around offset i puts spaces after
// "," and ":".
func (d *Doc) spaced(from, to int) bool {
	t := d.body[from:min(to, len(d.body))]
	return bytes.Contains(t, []byte(", ")) || bytes.Contains(t, []byte(": ")) || bytes.Contains(t, []byte(",\n")) || !d.JSON
}

// sep returns the text between two entries of a flow collection, as found
// there.
func (c *coll) sep() (string, error) {
	d := c.doc()
	if len(c.old) >= 2*c.step {
		a, err := c.entryEnd(0)
		if err != nil {
			return "", err
		}
		// a > b: a layout the scan misread; the read-back refuses it.
		if b := c.entryStart(c.step); a < b {
			if t := d.body[a:b]; !bytes.ContainsAny(t, "#") && bytes.Count(t, []byte(",")) == 1 {
				return string(t), nil
			}
		}
	}
	if c.multiline() {
		return "," + c.r.nl + d.lineIndent(d.start(c.old[0])), nil
	}
	if d.spaced(d.start(c.n), d.start(c.n)+200) {
		return ", ", nil
	}
	return ",", nil
}

// insert splices new entries (keys and values, or items) after old entry
// prev, or before old entry next when prev is -1.
func (c *coll) insert(prev, next int, entries []*yaml.Node) error {
	d, r := c.doc(), c.r
	if c.flow {
		sep, err := c.sep()
		if err != nil {
			return err
		}
		base := d.lineIndent(d.start(c.old[0]))
		pretty := c.multiline()
		spaced := d.spaced(d.start(c.n), d.start(c.n)+200)
		var texts []string
		for i := 0; i < len(entries); i += c.step {
			t, err := r.flowEntry(entries[i:i+c.step], base, pretty, spaced)
			if err != nil {
				return err
			}
			texts = append(texts, t)
		}
		if prev >= 0 {
			at, err := c.entryEnd(prev)
			if err != nil {
				return err
			}
			r.add(at, at, sep+strings.Join(texts, sep))
			return nil
		}
		at := c.entryStart(next)
		r.add(at, at, strings.Join(texts, sep)+sep)
		return nil
	}
	pad := strings.Repeat(" ", d.column(c.entryStart(0)))
	var lines []string
	var err error
	if c.step == 2 {
		lines, err = r.block(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: entries})
	} else {
		lines, err = r.items(entries, c.itemOffset())
	}
	if err != nil {
		return err
	}
	if prev >= 0 {
		e, err := c.entryEnd(prev)
		if err != nil {
			return err
		}
		r.below(e, len(pad), lines)
		return nil
	}
	at := c.entryStart(next)
	if !d.firstOnLine(at) {
		// "- key": the new entries go after the "- ", the key below them.
		r.add(at, at, strings.Join(lines, r.nl+pad)+r.nl+pad)
		return nil
	}
	// Before the key's line and the comment lines right above it, which
	// belong to the key.
	at = d.lineOf(at)
	for at > 0 {
		p := d.lineOf(at - 1)
		if t := bytes.TrimLeft(d.body[p:at], " \t"); len(t) == 0 || t[0] != '#' {
			break
		}
		at = p
	}
	r.add(at, at, pad+strings.Join(lines, r.nl+pad)+r.nl)
	return nil
}

// itemOffset returns how far past its "-" a block list's first item
// starts (2 for "- x").
func (c *coll) itemOffset() int {
	d := c.doc()
	dash, s := c.entryStart(0), d.start(c.old[0])
	if d.lineOf(dash) == d.lineOf(s) && s > dash {
		return s - dash
	}
	return 2
}

// replaceValue splices value v over old entry j's value.
func (c *coll) replaceValue(j int, v *yaml.Node) error {
	d, r := c.doc(), c.r
	key, ov := c.old[j], c.old[j+1]
	kc := d.column(d.start(key))
	s := d.start(ov)
	e, err := d.end(ov, kc, c.flow)
	if err != nil {
		return err
	}
	empty := s == e
	if c.flow {
		t, err := r.inline(v, d.lineIndent(d.start(key)), c.multiline(), d.spaced(d.start(c.n), d.start(c.n)+200))
		if err != nil {
			return err
		}
		if empty {
			t = " " + t
		}
		r.add(s, e, t)
		return nil
	}
	lines, err := r.block(v)
	if err != nil {
		return err
	}
	sameLine := empty || d.lineOf(s) == d.lineOf(d.start(key))
	child := kc + r.st.indent
	if v.Kind == yaml.ScalarNode || v.Kind == yaml.AliasNode || v.Style&yaml.FlowStyle != 0 || len(v.Content) == 0 {
		t := strings.Join(lines, r.nl+strings.Repeat(" ", child))
		if len(lines) > 1 && sameLine {
			// A block scalar: its header in the old value's place, its
			// lines after the line's comment, which they would swallow.
			if empty {
				lines[0] = " " + lines[0]
			}
			r.add(s, e, lines[0])
			r.below(e, child, lines[1:])
			return nil
		}
		switch {
		case empty:
			r.add(s, e, " "+t)
		case sameLine:
			r.add(s, e, t)
		default:
			// The old value is on the lines below its key: the new one
			// goes after the ":" when only whitespace is in between.
			at := s
			for at > 0 && isSpace(d.body[at-1]) {
				at--
			}
			if at > 0 && d.body[at-1] == ':' {
				r.add(at, e, " "+t)
			} else {
				r.add(d.lineOf(s), e, strings.Repeat(" ", child)+t)
			}
		}
		return nil
	}
	if v.Kind == yaml.SequenceNode && r.st.compact {
		child = kc
	}
	if sameLine {
		at := s
		for !empty && at > 0 && (d.body[at-1] == ' ' || d.body[at-1] == '\t') {
			at--
		}
		r.add(at, e, "")
		r.below(e, child, lines)
		return nil
	}
	// In the old value's column, unless a list at its key's column gives
	// way to a mapping, which must be indented past the key.
	col := d.column(s)
	if col <= kc && (v.Kind != yaml.SequenceNode || col < kc) {
		col = kc + r.st.indent
	}
	pad := strings.Repeat(" ", col)
	r.add(d.lineOf(s), e, pad+strings.Join(lines, r.nl+pad))
	return nil
}

// below splices lines, indented by col, after the line holding offset i.
func (r *renderer) below(i, col int, lines []string) {
	d := r.d
	pad := strings.Repeat(" ", col)
	at := d.lineEnd(i)
	if at == len(d.body) && (at == 0 || d.body[at-1] != '\n') {
		r.add(at, at, r.nl+pad+strings.Join(lines, r.nl+pad))
		return
	}
	r.add(at, at, pad+strings.Join(lines, r.nl+pad)+r.nl)
}

// remove splices old entry j out.
func (c *coll) remove(j int) error {
	d := c.doc()
	ks := c.entryStart(j)
	ve, err := c.entryEnd(j)
	if err != nil {
		return err
	}
	more := j+c.step < len(c.old)
	if c.flow {
		switch {
		case more:
			c.r.add(ks, c.entryStart(j+c.step), "")
		case j > 0:
			pe, err := c.entryEnd(j - c.step)
			if err != nil {
				return err
			}
			c.r.add(pe, ve, "")
		default:
			c.r.add(ks, ve, "")
		}
		return nil
	}
	switch {
	case d.firstOnLine(ks):
		c.r.add(d.lineOf(ks), d.lineEnd(ve), "")
	case more:
		c.r.add(ks, c.entryStart(j+c.step), "")
	default:
		return d.unfaithful(c.old[j], "removing the only entry after a \"-\"")
	}
	return nil
}

// replaceWhole splices a new text for collection n, none of whose old
// entries is kept.
func (r *renderer) replaceWhole(n *yaml.Node, flow bool) error {
	d := r.d
	s := d.skipProps(d.start(n))
	e, err := d.end(n, -1, flow)
	if err != nil {
		return err
	}
	if flow {
		multi := d.lineOf(s) != d.lineOf(e)
		t, err := r.inline(n, d.lineIndent(s), multi || r.jsonIndent != "" && d.JSON && len(n.Content) > 0 && !d.onOneLine(), d.spaced(s, e+200))
		if err != nil {
			return err
		}
		r.add(s, e, t)
		return nil
	}
	lines, err := r.block(n)
	if err != nil {
		return err
	}
	r.add(s, e, strings.Join(lines, r.nl+strings.Repeat(" ", d.column(s))))
	return nil
}

// onOneLine reports a document written on one line (minified JSON).
func (d *Doc) onOneLine() bool {
	if d.oneLine == 0 {
		d.oneLine = 2
		if !bytes.Contains(bytes.TrimSpace(d.body), []byte("\n")) {
			d.oneLine = 1
		}
	}
	return d.oneLine == 1
}
