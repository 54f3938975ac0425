package main

// Every YAML snippet of every README is applied by this test (issue 12
// item 3): decoded strictly as the Kubernetes object it is a part of, or as
// inject's config file; the shutdown-manager and drain command lines in it
// are parsed by the real parsers; its hooks call endpoints that exist with
// queries that parse; and a snippet that waits for a drain also starts one.

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"envoy-lifecycle/inject"
	"envoy-lifecycle/settings"
)

// snippet is one fenced ```yaml block of a README.
type snippet struct {
	file string
	line int
	src  string
}

func (s snippet) String() string { return fmt.Sprintf("%s:%d", s.file, s.line) }

// readmeSnippets returns every ```yaml block of every README.md in the
// repository.
func readmeSnippets(t *testing.T) []snippet {
	t.Helper()
	var out []snippet
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() != "README.md" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, yamlBlocks(path, string(src))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// yamlBlocks cuts the ```yaml blocks out of a Markdown file.
func yamlBlocks(file, md string) []snippet {
	var out []snippet
	var cur *snippet
	for i, line := range strings.Split(md, "\n") {
		fence := strings.TrimSpace(line)
		switch {
		case cur == nil && (fence == "```yaml" || fence == "```yml"):
			cur = &snippet{file: file, line: i + 2}
		case cur != nil && fence == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.src += line + "\n"
		}
	}
	return out
}

// elided is how a README leaves out a part it shows elsewhere.
const elided = "{...}"

// applied is what a snippet holds, once decoded.
type applied struct {
	containers []corev1.Container
	handlers   []corev1.LifecycleHandler // hooks outside any container (a lone handler)
	config     bool                      // inject's config file
}

// applySnippet decodes s strictly as the part of a Pod it is, or as
// inject's config file.
func applySnippet(s snippet) (applied, error) {
	src := strings.ReplaceAll(s.src, elided, "{}")
	var top any
	if err := yamlv3.Unmarshal([]byte(src), &top); err != nil {
		return applied{}, fmt.Errorf("not YAML: %w", err)
	}
	var a applied
	switch v := top.(type) {
	case []any:
		err := yaml.UnmarshalStrict([]byte(src), &a.containers)
		return a, err
	case map[string]any:
		switch {
		case strings.HasPrefix(s.src, "# entrypoints"):
			// inject --entrypoints FILE: container name -> command.
			_, err := inject.ParseEntrypoints(s.String(), []byte(s.src))
			a.config = true
			return a, err
		case has(v, "deployment", "statefulset", "daemonset", "job", "cronjob"):
			_, err := inject.ParseConfig(s.String(), []byte(s.src))
			a.config = true
			return a, err
		case has(v, "spec"):
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict([]byte(src), &pod); err != nil {
				return a, err
			}
			a.containers = append(pod.Spec.InitContainers, pod.Spec.Containers...)
		case has(v, "containers", "initContainers", "volumes"):
			var spec corev1.PodSpec
			if err := yaml.UnmarshalStrict([]byte(src), &spec); err != nil {
				return a, err
			}
			a.containers = append(spec.InitContainers, spec.Containers...)
		case has(v, "lifecycle", "name", "image", "args"):
			var c corev1.Container
			if err := yaml.UnmarshalStrict([]byte(src), &c); err != nil {
				return a, err
			}
			a.containers = []corev1.Container{c}
		case has(v, "httpGet", "exec", "sleep"):
			var h corev1.LifecycleHandler
			if err := yaml.UnmarshalStrict([]byte(src), &h); err != nil {
				return a, err
			}
			a.handlers = []corev1.LifecycleHandler{h}
		default:
			return a, fmt.Errorf("not a part of a Pod this test knows (keys %v)", mapKeys(v))
		}
		return a, nil
	}
	return a, fmt.Errorf("not a mapping or a list: %T", top)
}

func has(m map[string]any, names ...string) bool {
	for _, n := range names {
		if _, ok := m[n]; ok {
			return true
		}
	}
	return false
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// managerPaths are the shutdown manager's endpoints a hook may call, and
// whether each starts a drain.
var managerPaths = map[string]bool{
	"/shutdown": true, "/drain": true, "/waitforshutdown": false, "/shutdown/ready": false, "/waitz": false,
}

// ourMode returns the subcommand and its arguments when c runs
// envoy-lifecycle's shutdown-manager or drain.
func ourMode(c corev1.Container) (string, []string) {
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(argv) > 1 && strings.HasSuffix(argv[0], "envoy-lifecycle") {
		argv = argv[1:]
	}
	if len(argv) > 0 && (argv[0] == "shutdown-manager" || argv[0] == "drain") {
		return argv[0], argv[1:]
	}
	return "", nil
}

func TestReadmeSnippets(t *testing.T) {
	snippets := readmeSnippets(t)
	if len(snippets) < 10 {
		t.Fatalf("found %d yaml snippets in the READMEs; the walk is broken", len(snippets))
	}
	for _, s := range snippets {
		t.Run(s.String(), func(t *testing.T) {
			a, err := applySnippet(s)
			if err != nil {
				t.Fatalf("%s: %v\n%s", s, err, s.src)
			}
			if a.config {
				return
			}
			starts, waits := false, false
			hook := func(where string, h *corev1.LifecycleHandler) {
				if h == nil {
					return
				}
				if h.Exec != nil {
					c := corev1.Container{Command: h.Exec.Command}
					if mode, args := ourMode(c); mode != "" {
						checkModeArgs(t, s, where, mode, args, nil)
						starts = starts || mode == "drain"
					}
				}
				if h.HTTPGet == nil {
					return
				}
				u, err := url.Parse(h.HTTPGet.Path)
				if err != nil {
					t.Errorf("%s: %s: bad path %q: %v", s, where, h.HTTPGet.Path, err)
					return
				}
				start, ok := managerPaths[u.Path]
				if !ok {
					t.Errorf("%s: %s: %s is not a shutdown-manager endpoint a hook calls", s, where, u.Path)
					return
				}
				starts = starts || start
				waits = waits || u.Path == "/waitforshutdown"
				for k, vs := range u.Query() {
					if k != "delay" && k != "period" && k != "deadline" {
						t.Errorf("%s: %s: unknown query parameter %q", s, where, k)
					}
					for _, v := range vs {
						if _, err := settings.ParseDuration(v); err != nil {
							t.Errorf("%s: %s: %s=%q: %v", s, where, k, v, err)
						}
					}
				}
			}
			for _, h := range a.handlers {
				hook("handler", &h)
			}
			for _, c := range a.containers {
				if mode, args := ourMode(c); mode != "" {
					checkModeArgs(t, s, c.Name, mode, args, c.Env)
				}
				if c.Lifecycle != nil {
					hook(c.Name+" preStop", c.Lifecycle.PreStop)
				}
			}
			if waits && !starts {
				t.Errorf("%s: a hook waits for the drain (/waitforshutdown) but none starts it (/shutdown, /drain or `drain`): this pod drains nothing", s)
			}
		})
	}
}

// checkModeArgs parses a shutdown-manager or drain command line from a
// snippet with the real parser, with the container's environment.
func checkModeArgs(t *testing.T, s snippet, where, mode string, args []string, env []corev1.EnvVar) {
	t.Helper()
	for _, e := range env {
		t.Setenv(e.Name, e.Value)
	}
	cmd := forManager
	if mode == "drain" {
		cmd = forDrain
	}
	if _, _, err := parseMgrConfig(cmd, args); err != nil {
		t.Errorf("%s: %s: envoy-lifecycle %s %s: %v", s, where, mode, strings.Join(args, " "), err)
	}
}

// TestReadmeSnippetCheckFails: the checks above catch the snippet issue 12
// item 3 found (a manager that only waits), a misspelt path and a field
// Kubernetes does not know.
func TestReadmeSnippetCheckFails(t *testing.T) {
	bad := map[string]string{
		"waits only":    "- name: shutdown-manager\n  image: envoy-lifecycle\n  args: [shutdown-manager]\n  lifecycle:\n    preStop:\n      httpGet: {path: /waitforshutdown, port: 8090}\n",
		"unknown field": "- name: envoy\n  lifecycle:\n    preStop:\n      httpGett: {path: /shutdown, port: 8090}\n",
	}
	for name, src := range bad {
		a, err := applySnippet(snippet{file: name, src: src})
		if name == "unknown field" {
			if err == nil {
				t.Errorf("%s: decoded without error", name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h := a.containers[0].Lifecycle.PreStop.HTTPGet; managerPaths[h.Path] {
			t.Errorf("%s: /waitforshutdown counted as starting a drain", name)
		}
	}
	md := "text\n```yaml\na: 1\n```\n```\nnot yaml\n```\n"
	if got := yamlBlocks("x", md); len(got) != 1 || got[0].src != "a: 1\n" || got[0].line != 3 {
		t.Errorf("yamlBlocks got %+v", got)
	}
	if !bytes.Contains([]byte(elided), []byte("...")) {
		t.Fatal("elided marker changed")
	}
}
