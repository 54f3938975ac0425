package inject

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"envoy-lifecycle/yamledit"

	yaml "go.yaml.in/yaml/v3"
)

// workload is an object of the manifest that holds a pod spec.
type workload struct {
	file      string
	doc       *yamledit.Doc
	kind      string // as in the manifest: "Deployment"
	name      string
	namespace string
	obj       *yaml.Node // the object's mapping
	path      []string   // from obj to the pod spec
}

// String names the workload as kubectl does: deployment/web.
func (w *workload) String() string {
	name := w.name
	if name == "" {
		name = "(no name)"
	}
	return strings.ToLower(w.kind) + "/" + name
}

// fail wraps an error found in the workload's document: a *shapeError gets
// the file, the line and ExitManifest; others are returned as they are.
func (w *workload) fail(err error) error {
	var se *shapeError
	if errors.As(err, &se) {
		return &Error{Code: ExitManifest, File: w.file, Line: w.line(se.line), Msg: w.String() + ": " + err.Error()}
	}
	return err
}

// errorf is an ExitMismatch error at node n of the workload.
func (w *workload) errorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{Code: ExitMismatch, File: w.file, Line: w.line(line), Msg: w.String() + ": " + fmt.Sprintf(format, args...)}
}

// line turns a line of the document into a line of the file.
func (w *workload) line(n int) int {
	if n <= 0 {
		return w.doc.Line
	}
	return w.doc.Line + n - 1
}

// podSpec returns the workload's pod spec mapping.
func (w *workload) podSpec() (*yaml.Node, error) {
	n := w.obj
	for i, key := range w.path {
		next, err := mapAt(n, key, strings.Join(w.path[:i+1], "."), false)
		if err != nil {
			return nil, w.fail(err)
		}
		if next == nil {
			return nil, w.fail(shapeErrorf(n, "no %s", strings.Join(w.path, ".")))
		}
		n = next
	}
	return n, nil
}

// podMeta returns the pod template's metadata (the object's own for a
// Pod), or nil.
func (w *workload) podMeta() *yaml.Node {
	n := w.obj
	for _, key := range w.path[:len(w.path)-1] {
		n, _ = lookup(n, key)
	}
	m, _ := lookup(n, "metadata")
	return m
}

// workloadGroups are the API groups whose kinds inject knows. A
// "Deployment" of another group is some custom resource and is left alone.
var workloadGroups = map[string]bool{"": true, "apps": true, "extensions": true, "batch": true}

// maxListDepth bounds Lists nested in Lists.
const maxListDepth = 8

// collect returns the workloads of a document, in order, looking into the
// items of Lists.
func collect(file string, d *yamledit.Doc) []*workload {
	var out []*workload
	var visit func(d *yamledit.Doc, obj *yaml.Node, depth int)
	visit = func(d *yamledit.Doc, obj *yaml.Node, depth int) {
		if obj == nil || obj.Kind != yaml.MappingNode || depth > maxListDepth {
			return
		}
		kind := scalarAt(obj, "kind")
		if items, err := lookup(obj, "items"); err == nil && items != nil && items.Kind == yaml.SequenceNode && strings.HasSuffix(kind, "List") {
			for _, it := range items.Content {
				visit(d, it, depth+1)
			}
			return
		}
		k, ok := kinds[strings.ToLower(kind)]
		if !ok || k.kind != kind {
			return
		}
		group, _, _ := strings.Cut(scalarAt(obj, "apiVersion"), "/")
		if !strings.Contains(scalarAt(obj, "apiVersion"), "/") {
			group = ""
		}
		if !workloadGroups[group] {
			return
		}
		meta, _ := lookup(obj, "metadata")
		out = append(out, &workload{
			file: file, doc: d, kind: kind, obj: obj, path: k.path,
			name: scalarAt(meta, "name"), namespace: scalarAt(meta, "namespace"),
		})
	}
	if d.Root != nil && len(d.Root.Content) == 1 {
		visit(d, d.Root.Content[0], 0)
	}
	return out
}

// container is a container of a pod spec.
type container struct {
	node    *yaml.Node
	name    string
	sidecar bool // a native sidecar: an init container with restartPolicy Always
}

// containers returns the pod's containers, then its native sidecars.
func containers(spec *yaml.Node) ([]container, error) {
	var out []container
	for _, key := range []string{"containers", "initContainers"} {
		seq, err := seqAt(spec, key, key, false)
		if err != nil {
			return nil, err
		}
		if seq == nil {
			continue
		}
		for _, it := range seq.Content {
			if it.Kind != yaml.MappingNode {
				return nil, shapeErrorf(it, "%s: want a mapping per container, got %s", key, describe(it))
			}
			if _, err := lookup(it, "name"); err != nil {
				return nil, err
			}
			c := container{node: it, name: scalarAt(it, "name")}
			if key == "initContainers" {
				if scalarAt(it, "restartPolicy") != "Always" {
					continue
				}
				c.sidecar = true
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// names lists container names for messages.
func names(cs []container) string {
	var ns []string
	for _, c := range cs {
		ns = append(ns, c.name)
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

func find(cs []container, name string) (container, bool) {
	for _, c := range cs {
		if c.name == name {
			return c, true
		}
	}
	return container{}, false
}

// addContainer appends c to the pod's containers.
func addContainer(spec, c *yaml.Node) error {
	seq, err := seqAt(spec, "containers", "containers", true)
	if err != nil {
		return err
	}
	seq.Content = append(seq.Content, c)
	return nil
}

// setPreStop makes handler the container's only preStop handler. It
// reports whether a different hook was there before.
func setPreStop(c *yaml.Node, handler *yaml.Node) (replaced bool, err error) {
	lc, err := mapAt(c, "lifecycle", "lifecycle", true)
	if err != nil {
		return false, err
	}
	old, err := lookup(lc, "preStop")
	if err != nil {
		return false, err
	}
	replaced = old != nil && !isNull(old) && !yamledit.Equal(old, handler)
	set(lc, "preStop", handler)
	return replaced, nil
}

// execHandler is preStop: exec: command: [...].
func execHandler(cmd []string) *yaml.Node {
	return obj(field{"exec", obj(field{"command", strings2seq(cmd)})})
}

// sleepHandler is preStop: sleep: seconds: n (Kubernetes 1.30 beta, 1.34
// GA).
func sleepHandler(seconds int) *yaml.Node {
	return obj(field{"sleep", obj(field{"seconds", integer(seconds)})})
}

// httpGetHandler is preStop: httpGet: {path, port}.
func httpGetHandler(path string, port int) *yaml.Node {
	return obj(field{"httpGet", obj(field{"path", str(path)}, field{"port", integer(port)})})
}

// env returns the literal value of the container's variable name, whether
// it is set, and whether it is set by valueFrom (so unknown here).
func env(c *yaml.Node, name string) (value string, set, indirect bool, err error) {
	seq, err := seqAt(c, "env", "env", false)
	if err != nil {
		return "", false, false, err
	}
	e, err := named(seq, name, "env")
	if err != nil || e == nil {
		return "", false, false, err
	}
	v, err := lookup(e, "value")
	if err != nil {
		return "", false, false, err
	}
	if v == nil || isNull(v) {
		from, _ := lookup(e, "valueFrom")
		return "", true, from != nil, nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", false, false, shapeErrorf(v, "env %s: value: want a string, got %s", name, describe(v))
	}
	return v.Value, true, false, nil
}

// setEnv sets the container's variable name to value. With keep, a
// variable that is already there is left as it is.
func setEnv(c *yaml.Node, name, value string, keep bool) error {
	seq, err := seqAt(c, "env", "env", true)
	if err != nil {
		return err
	}
	e, err := named(seq, name, "env")
	if err != nil {
		return err
	}
	if e == nil {
		seq.Content = append(seq.Content, obj(field{"name", str(name)}, field{"value", str(value)}))
		return nil
	}
	if keep {
		return nil
	}
	remove(e, "valueFrom")
	set(e, "value", str(value))
	return nil
}

// gracePeriod returns the pod's terminationGracePeriodSeconds, 30 when
// absent.
func gracePeriod(spec *yaml.Node) (int, *yaml.Node, error) {
	v, err := lookup(spec, "terminationGracePeriodSeconds")
	if err != nil {
		return 0, nil, err
	}
	if v == nil || isNull(v) {
		return defaultGrace, nil, nil
	}
	n, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil || n < 0 {
		return 0, v, shapeErrorf(v, "terminationGracePeriodSeconds: want a whole number of seconds, got %s", describe(v))
	}
	return n, v, nil
}

// defaultGrace is Kubernetes' terminationGracePeriodSeconds when unset.
const defaultGrace = 30
