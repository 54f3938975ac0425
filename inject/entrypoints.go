package inject

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// ParseEntrypoints reads an --entrypoints file: container name → the
// command a preset wraps when that container has no command.
//
//	productpage: ["python", "productpage.py", "9080"]
//	reviews: ["/opt/ibm/wlp/bin/server", "run", "defaultServer"]
//
// It is a file of its own, not a key of the -c config: that config is the
// injector script's format (hooks only, no presets). Every error names the
// file and the line, and has code ExitUsage.
func ParseEntrypoints(file string, src []byte) (eps map[string][]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			eps, err = nil, &Error{Code: ExitUsage, File: file, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}
		}
	}()
	fail := func(n *yaml.Node, format string, args ...any) error {
		return &Error{Code: ExitUsage, File: file, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
	}
	root, err := decodeOne(file, src, "the entrypoints file", "container → [COMMAND...]", "container")
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode || len(root.Content) == 0 {
		return nil, fail(root, "the entrypoints file must map container names to commands (web: [\"/app\", \"serve\"]), got %s", describe(root))
	}
	eps = map[string][]string{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) || k.Value == "" {
			return nil, fail(k, "a container name must be a string, got %s", describe(k))
		}
		cmd, err := wordList(v)
		if err != nil {
			return nil, fail(v, "container %q: the entrypoint %v", k.Value, err)
		}
		eps[k.Value] = cmd
	}
	return eps, nil
}
