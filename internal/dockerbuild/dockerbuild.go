// Package dockerbuild reads the `go build` line of the Dockerfile, so every
// other build of the binary (tests, bench, demo) is the image's build and
// cannot drift from it.
package dockerbuild

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Command returns the Dockerfile's `go build` of package pkg of the module
// in root, writing out, for the host platform. Its Stdout and Stderr are
// unset.
func Command(root, out, pkg string, buildArgs map[string]string) (*exec.Cmd, error) {
	env, args, err := Flags(root, buildArgs)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", append(append(args, "-o", out), pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	return cmd, nil
}

// Flags reads the Dockerfile in root and returns the environment and `go
// build` arguments of its build line, without -o and the package.
// Variables take buildArgs (as docker build --build-arg sets them), else
// their ARG defaults; the platform variables are dropped, so the build is
// for the host.
func Flags(root string, buildArgs map[string]string) (env, args []string, err error) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{}
	maps.Copy(vars, buildArgs)
	var line string
	// Join continued lines, then take the ARG defaults and the RUN line
	// that builds.
	for l := range strings.SplitSeq(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		l = strings.TrimSpace(l)
		if rest, ok := strings.CutPrefix(l, "ARG "); ok {
			for _, f := range strings.Fields(rest) {
				if k, v, ok := strings.Cut(f, "="); ok {
					if _, set := vars[k]; !set {
						vars[k] = v
					}
				}
			}
		}
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, " go build ") {
			line = l
			break
		}
	}
	at := strings.Index(line, " go build ")
	if at < 0 {
		return nil, nil, errors.New("no RUN line with `go build` in the Dockerfile")
	}
	cmdline := line[at+len(" go build "):]
	prefix := strings.Fields(line[:at])
	for _, f := range prefix {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !isEnvName(k) {
			continue
		}
		// $TARGETOS and friends are buildx's; the tests run on the host.
		if strings.HasPrefix(v, "$") {
			continue
		}
		env = append(env, k+"="+v)
	}
	words, err := shellWords(cmdline)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the Dockerfile's go build line: %w", err)
	}
	args = []string{"build"}
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-o":
			i++ // the image's output path; the caller picks its own
		case i == len(words)-1 && !strings.HasPrefix(w, "-"):
			// the package, which the caller names
		default:
			args = append(args, os.Expand(w, func(k string) string { return vars[k] }))
		}
	}
	return env, args, nil
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// shellWords splits s as sh would for words with double quotes and no
// escapes, which is all the Dockerfile's build line uses.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			in = true
		case (r == ' ' || r == '\t') && !quoted:
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
