package examples

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// configSuffix names YAML files in examples/ that are not Kubernetes
// manifests: inject's seed configs. Every other .yaml file is a manifest.
const configSuffix = ".config.yaml"

// knownKinds are the apiVersion and kind pairs the examples may use. The
// strict test (examples_test.go) has a k8s.io/api type for each.
var knownKinds = map[string]string{
	"Pod":                 "v1",
	"ConfigMap":           "v1",
	"Service":             "v1",
	"ServiceAccount":      "v1",
	"Secret":              "v1",
	"Deployment":          "apps/v1",
	"StatefulSet":         "apps/v1",
	"DaemonSet":           "apps/v1",
	"Job":                 "batch/v1",
	"CronJob":             "batch/v1",
	"PodDisruptionBudget": "policy/v1",
}

// podSpecPath is where each workload kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"Pod":         {"spec"},
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
}

// document is one YAML document of a manifest file.
type document struct {
	file                   string // relative to examples/
	line                   int    // where the document starts, 1-based
	src                    []byte // the document's text
	node                   *yaml.Node
	apiVersion, kind, name string
}

func (d *document) String() string {
	return fmt.Sprintf("%s:%d (%s %s)", d.file, d.line, d.kind, d.name)
}

// manifestFiles lists every .yaml and .yml file under examples/, sorted.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no manifest under examples/")
	}
	return files
}

// splitDocuments splits a YAML stream on its "---" lines. Documents that
// hold nothing but comments are dropped.
func splitDocuments(src []byte) (docs [][]byte, lines []int) {
	var cur bytes.Buffer
	start, n := 1, 0
	flush := func(next int) {
		if hasContent(cur.Bytes()) {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
			lines = append(lines, start)
		}
		cur.Reset()
		start = next
	}
	for _, l := range strings.SplitAfter(string(src), "\n") {
		n++
		if t := strings.TrimRight(l, " \t\r\n"); t == "---" || strings.HasPrefix(t, "--- ") {
			flush(n + 1)
			continue
		}
		cur.WriteString(l)
	}
	flush(n)
	return docs, lines
}

func hasContent(b []byte) bool {
	for _, l := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// loadFile reads every document of one manifest file.
func loadFile(path string) ([]*document, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	texts, lines := splitDocuments(src)
	var docs []*document
	for i, text := range texts {
		var n yaml.Node
		if err := yaml.Unmarshal(text, &n); err != nil {
			return nil, fmt.Errorf("%s:%d: cannot parse YAML: %w", path, lines[i], err)
		}
		d := &document{file: path, line: lines[i], src: text, node: &n}
		var head struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		if err := n.Decode(&head); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, lines[i], err)
		}
		d.apiVersion, d.kind, d.name = head.APIVersion, head.Kind, head.Metadata.Name
		docs = append(docs, d)
	}
	return docs, nil
}

// loadManifests reads every document of every manifest under examples/.
func loadManifests(t *testing.T) []*document {
	t.Helper()
	var all []*document
	for _, f := range manifestFiles(t) {
		if strings.HasSuffix(f, configSuffix) {
			continue
		}
		docs, err := loadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) == 0 {
			t.Errorf("%s: no document", f)
		}
		all = append(all, docs...)
	}
	return all
}

// The parts of a pod spec the sanity checks and the timeline tests read.
// Decoding is lenient here: the strict check is examples_test.go's.
type podSpec struct {
	TerminationGracePeriodSeconds *int64      `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string      `yaml:"restartPolicy"`
	InitContainers                []container `yaml:"initContainers"`
	Containers                    []container `yaml:"containers"`
}

type container struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Command       []string `yaml:"command"`
	Args          []string `yaml:"args"`
	Env           []envVar `yaml:"env"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Ports         []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Lifecycle *struct {
		PreStop *handler `yaml:"preStop"`
	} `yaml:"lifecycle"`
	StartupProbe *struct {
		HTTPGet *httpGet `yaml:"httpGet"`
	} `yaml:"startupProbe"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string     `yaml:"name"`
	Value     string     `yaml:"value"`
	ValueFrom *valueFrom `yaml:"valueFrom"`
}

type valueFrom struct {
	SecretKeyRef *struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"secretKeyRef"`
	FieldRef any `yaml:"fieldRef"`
}

type handler struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	HTTPGet *httpGet `yaml:"httpGet"`
	Sleep   *struct {
		Seconds int64 `yaml:"seconds"`
	} `yaml:"sleep"`
}

type httpGet struct {
	Path        string `yaml:"path"`
	Port        any    `yaml:"port"`
	HTTPHeaders []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"httpHeaders"`
}

// lifecycleEntrypoint is the envoy-lifecycle image's ENTRYPOINT.
const lifecycleEntrypoint = "/envoy-lifecycle"

// argv is the container's command line: command, then args; the
// envoy-lifecycle image's ENTRYPOINT when it has no command. (Other
// images' ENTRYPOINTs are not known here.)
func (c *container) argv() []string {
	cmd := c.Command
	if len(cmd) == 0 && c.Image == lifecycleImage {
		cmd = []string{lifecycleEntrypoint}
	}
	return append(append([]string(nil), cmd...), c.Args...)
}

func (c *container) preStop() *handler {
	if c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PreStop
}

// env returns the literal value of the variable name; ok is false if the
// container does not set it (or sets it with valueFrom).
func (c *container) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// port resolves an httpGet port, a number or the name of a container port.
func (c *container) port(p any) (int, error) {
	switch v := p.(type) {
	case int:
		return v, nil
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n, nil
		}
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort, nil
			}
		}
		return 0, fmt.Errorf("container %s has no port named %q", c.Name, v)
	}
	return 0, fmt.Errorf("port %v: not a number or a name", p)
}

// isNativeSidecar reports whether an init container is a native sidecar.
func (c *container) isNativeSidecar() bool { return c.RestartPolicy == "Always" }

// errNoPodSpec means a document's kind has no pod spec.
var errNoPodSpec = errors.New("no pod spec")

// podSpec returns the document's pod spec, if its kind has one.
func (d *document) podSpec() (*podSpec, error) {
	path, ok := podSpecPath[d.kind]
	if !ok {
		return nil, errNoPodSpec
	}
	n := d.node
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		n = child(n, key)
		if n == nil {
			return nil, fmt.Errorf("%s: no %s", d, strings.Join(path, "."))
		}
	}
	var ps podSpec
	if err := n.Decode(&ps); err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return &ps, nil
}

// child is the value of key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// manifest loads one example file and returns the document of the given
// kind (the first if name is empty).
func manifest(t *testing.T, file, kind string) *document {
	t.Helper()
	docs, err := loadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if d.kind == kind {
			return d
		}
	}
	t.Fatalf("%s: no %s", file, kind)
	return nil
}

// secrets returns the stringData of every Secret in the file, by name.
func secrets(t *testing.T, file string) map[string]map[string]string {
	t.Helper()
	docs, err := loadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, d := range docs {
		if d.kind != "Secret" {
			continue
		}
		var s struct {
			StringData map[string]string `yaml:"stringData"`
		}
		if err := d.node.Decode(&s); err != nil {
			t.Fatal(err)
		}
		out[d.name] = s.StringData
	}
	return out
}
