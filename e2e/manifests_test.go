package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// localImages maps the examples' images (by repository) to the images
// built here.
var localImages = map[string]string{
	"registry.example/app":                    imgApp,
	"envoyproxy/envoy":                        imgEnvoy,
	"ghcr.io/envoy-lifecycle/envoy-lifecycle": imgLifecycle,
}

// obj is one decoded manifest document.
type obj = map[string]any

// readManifest reads a manifest of examples/ as a list of objects.
func readManifest(t *testing.T, file string) []obj {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../examples", file))
	if err != nil {
		t.Fatal(err)
	}
	var out []obj
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(src), -1) {
		var o obj
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

// variant says how a test changes a published manifest to run it here:
// local images that are never pulled, always; the rest only where a test
// needs it.
type variant struct {
	// envoyArgs are the Envoy fake's flags, per container, appended to the
	// manifest's Envoy arguments (the fake reads no YAML bootstrap).
	envoyArgs map[string][]string
	// env sets variables, per container; setEnv replaces only variables the
	// manifest sets.
	env, setEnv map[string]map[string]string
	replicas    int
	// edit changes a pod spec further.
	edit func(spec obj)
}

// apply applies the variant of the manifest file in namespace ns.
func (v variant) apply(t *testing.T, k kube, file string) []obj {
	t.Helper()
	objs := readManifest(t, file)
	for _, o := range objs {
		v.derive(t, o)
	}
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if out, err := k.kubectl(buf.Bytes(), "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the variant of %s: %v\n%s", file, err, out)
	}
	return objs
}

func (v variant) derive(t *testing.T, o obj) {
	t.Helper()
	kind, _ := o["kind"].(string)
	var spec obj
	switch kind {
	case "Deployment", "Job":
		spec = dig(o, "spec", "template", "spec")
		if v.replicas > 0 && kind == "Deployment" {
			o["spec"].(obj)["replicas"] = v.replicas
		}
	case "CronJob":
		spec = dig(o, "spec", "jobTemplate", "spec", "template", "spec")
	case "Pod":
		spec = dig(o, "spec")
	default:
		return
	}
	seen := map[string]bool{}
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			c := c.(obj)
			name := c["name"].(string)
			seen[name] = true
			image := c["image"].(string)
			repo := image[:strings.LastIndexByte(image, ':')]
			local, ok := localImages[repo]
			if !ok {
				t.Fatalf("container %s: no local image for %s", name, image)
			}
			c["image"], c["imagePullPolicy"] = local, "Never"
			if a, ok := v.envoyArgs[name]; ok {
				args, _ := c["args"].([]any)
				for _, s := range a {
					args = append(args, s)
				}
				c["args"] = args
			} else if local == imgEnvoy {
				t.Fatalf("container %s runs Envoy: the test must give the fake's flags", name)
			}
			for k, val := range v.setEnv[name] {
				if !setEnv(c, k, val, false) {
					t.Fatalf("container %s does not set %s: the test cannot replace it", name, k)
				}
			}
			for k, val := range v.env[name] {
				setEnv(c, k, val, true)
			}
		}
	}
	for name := range v.envoyArgs {
		if !seen[name] {
			t.Fatalf("no container %s", name)
		}
	}
	if v.edit != nil {
		v.edit(spec)
	}
}

// setEnv sets a variable of container c; it adds one only if add.
func setEnv(c obj, name, value string, add bool) bool {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if e := e.(obj); e["name"] == name {
			delete(e, "valueFrom")
			e["value"] = value
			return true
		}
	}
	if add {
		c["env"] = append(env, obj{"name": name, "value": value})
	}
	return add
}

func dig(o obj, path ...string) obj {
	for _, p := range path {
		o = o[p].(obj)
	}
	return o
}

// kube is a namespace of the node, made for one test.
type kube struct {
	*node
	ns string
}

// namespace makes a namespace for t, deleted at cleanup (its pods are
// gone at the latest when the node stops).
func namespace(t *testing.T) kube {
	t.Helper()
	n := needNode(t)
	name := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	if _, err := n.kubectl(nil, "create", "namespace", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.kubectl(nil, "delete", "namespace", name, "--wait=false") })
	k := kube{n, name}
	// Pods are refused until the controller manager made the
	// namespace's default ServiceAccount.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := k.kubectl(nil, "get", "serviceaccount", "default"); err == nil {
			return k
		}
		if time.Now().After(deadline) {
			t.Fatalf("no default ServiceAccount in %s after 30s", name)
		}
		time.Sleep(100 * time.Millisecond) // nothing announces the ServiceAccount
	}
}

// kubectl runs kubectl in the namespace.
func (k kube) kubectl(stdin []byte, args ...string) (string, error) {
	return k.node.kubectl(stdin, append([]string{"-n", k.ns}, args...)...)
}

func (k kube) String() string { return fmt.Sprintf("namespace %s", k.ns) }
