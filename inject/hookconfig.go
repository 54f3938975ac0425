package inject

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"envoy-lifecycle/yamledit"

	yaml "go.yaml.in/yaml/v3"
)

// kinds maps the config's lowercase kinds to the manifest's, with the path
// from the object to its pod spec.
var kinds = map[string]struct {
	kind string
	path []string
}{
	"pod":                   {"Pod", []string{"spec"}},
	"deployment":            {"Deployment", []string{"spec", "template", "spec"}},
	"statefulset":           {"StatefulSet", []string{"spec", "template", "spec"}},
	"daemonset":             {"DaemonSet", []string{"spec", "template", "spec"}},
	"replicaset":            {"ReplicaSet", []string{"spec", "template", "spec"}},
	"replicationcontroller": {"ReplicationController", []string{"spec", "template", "spec"}},
	"job":                   {"Job", []string{"spec", "template", "spec"}},
	"cronjob":               {"CronJob", []string{"spec", "jobTemplate", "spec", "template", "spec"}},
}

// validKinds lists the config's kinds for error messages.
func validKinds() string {
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// Config is a config file of the injector script's format: kind
// (lowercase) → resource name → container name → preStop exec command.
// ParseConfig reads it.
type Config struct {
	file    string
	entries []*hookEntry // in file order
}

// hookEntry is one resource of the config.
type hookEntry struct {
	kind  string // as in the manifest: "Deployment"
	name  string
	line  int
	hooks []*containerHook // in file order
}

// containerHook is one container of a resource and its preStop command.
type containerHook struct {
	container string
	command   []string
	style     *yaml.Node // the config's list, whose style the hook copies
	line      int
}

// ParseConfig reads the config format of the injector script, as is:
//
//	deployment:
//	  http-svc:
//	    http-svc: ["/bin/sh", "-c", "/bin/graceful_termination.sh"]
//
// Every error names the file and the line, and has code ExitUsage.
func ParseConfig(file string, src []byte) (cfg *Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, &Error{Code: ExitUsage, File: file, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}
		}
	}()
	fail := func(n *yaml.Node, format string, args ...any) error {
		return &Error{Code: ExitUsage, File: file, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
	}
	root, err := decodeOne(file, src, "the config", "kind → resource name → container → preStop command", "kind")
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root, "the config must map kinds to resources (deployment: {NAME: {CONTAINER: [COMMAND...]}}), got %s", describe(root))
	}
	cfg = &Config{file: file}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fail(k, "a kind must be a plain name, got %s", describe(k))
		}
		kind, ok := kinds[strings.ToLower(k.Value)]
		if !ok {
			return nil, fail(k, "unknown kind %q (valid: %s)", k.Value, validKinds())
		}
		if v.Kind != yaml.MappingNode {
			return nil, fail(v, "%s: want resource names, each mapping containers to a preStop command, got %s", k.Value, describe(v))
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			rk, rv := v.Content[j], v.Content[j+1]
			if rk.Kind != yaml.ScalarNode || isNull(rk) {
				return nil, fail(rk, "%s: a resource name must be a string, got %s", k.Value, describe(rk))
			}
			if rv.Kind != yaml.MappingNode || len(rv.Content) == 0 {
				return nil, fail(rv, "%s %q: want containers, each with a preStop command, got %s", k.Value, rk.Value, describe(rv))
			}
			e := &hookEntry{kind: kind.kind, name: rk.Value, line: rk.Line}
			for c := 0; c+1 < len(rv.Content); c += 2 {
				ck, cv := rv.Content[c], rv.Content[c+1]
				if ck.Kind != yaml.ScalarNode || isNull(ck) {
					return nil, fail(ck, "%s %q: a container name must be a string, got %s", k.Value, rk.Value, describe(ck))
				}
				cmd, err := commandList(cv)
				if err != nil {
					return nil, fail(cv, "%s %q container %q: %v", k.Value, rk.Value, ck.Value, err)
				}
				e.hooks = append(e.hooks, &containerHook{container: ck.Value, command: cmd, style: cv, line: ck.Line})
			}
			cfg.entries = append(cfg.entries, e)
		}
	}
	if len(cfg.entries) == 0 {
		return nil, fail(root, "the config names no resource")
	}
	return cfg, nil
}

// configError is a config file that is not YAML.
func configError(file string, e *yamledit.Error) *Error {
	return &Error{Code: ExitUsage, File: file, Line: e.Line, Msg: e.Msg}
}

// commandList reads a preStop command: a non-empty list of scalars.
func commandList(n *yaml.Node) ([]string, error) {
	w, err := wordList(n)
	if err != nil {
		return nil, fmt.Errorf("the preStop command %w", err)
	}
	return w, nil
}

// wordList reads a command: a non-empty list of scalars. Its errors
// follow the command's name ("the preStop command ...").
func wordList(n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("must be a list such as [\"/bin/sh\", \"-c\", \"...\"], got %s", describe(n))
	}
	if len(n.Content) == 0 {
		return nil, errors.New("is empty")
	}
	var out []string
	for _, it := range n.Content {
		if it.Kind != yaml.ScalarNode || isNull(it) {
			return nil, fmt.Errorf("has a word that is not a string: %s", describe(it))
		}
		out = append(out, it.Value)
	}
	return out, nil
}

// decodeOne decodes src, which must hold exactly one YAML document with
// well-formed keys, and returns its root node. what names the file in
// errors ("the config"), want says what it maps, each what one entry is.
func decodeOne(file string, src []byte, what, want, each string) (*yaml.Node, error) {
	empty := &Error{Code: ExitUsage, File: file, Msg: what + " is empty (want: " + want + ")"}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, empty
	case err != nil:
		return nil, configError(file, yamledit.SyntaxError(1, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{Code: ExitUsage, File: file, Line: extra.Line, Msg: what + " has a second document; put every " + each + " in one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, configError(file, yamledit.SyntaxError(1, err))
	}
	if e := yamledit.CheckKeys(1, &doc); e != nil {
		return nil, configError(file, e)
	}
	if len(doc.Content) != 1 {
		return nil, empty
	}
	return doc.Content[0], nil
}
