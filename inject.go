package main

// The inject subcommand's command line: flags, reading the manifest and
// the config, and writing the result in place, to -o or as a diff. The
// injection itself is package inject.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"envoy-lifecycle/inject"
	"envoy-lifecycle/internal/udiff"
	"envoy-lifecycle/settings"
)

const injectUsage = `Usage: envoy-lifecycle inject (-c CONFIG | --preset NAME) [flags] MANIFEST

Adds lifecycle hooks to the Kubernetes manifest MANIFEST (- for stdin) and
overwrites it, or writes to -o. Multi-document YAML, kind: List, JSON and
JSON streams (kubectl get -o json).

  -c, --config FILE       injector-script config: kind -> name -> container -> preStop command
  --preset NAME           envoy, istio or shutdown-manager, instead of a config
  -o, --output FILE       write here (- for stdout) instead of overwriting MANIFEST
  --dry-run               print a unified diff on stdout and change nothing
  --no-istio-stub         never add an istio-proxy container for Istio to merge

Preset flags:
  --image IMAGE           envoy-lifecycle image of the added containers (default ` + inject.DefaultImage + `)
  --entrypoint [NAME=]CMD command to wrap when an app container has no command
                          ("/app serve", or a JSON list '["/app", "serve"]');
                          NAME=CMD for container NAME only (repeatable)
  --entrypoints FILE      per-container entrypoints, a YAML map: NAME: [CMD...]
  --app-container NAME    wrap only this container (repeatable; default: every non-proxy container)
  --proxy-container NAME  the proxy container (default: named envoy or istio-proxy,
                          or an image containing envoy or proxyv2)
  --admin-port PORT       Envoy admin port (default 9901; istio 15000)
  --drain-deadline D      ENVOY_LIFECYCLE_DRAIN_DEADLINE for the app (envoy, istio),
                          or the hooks' ?deadline= (shutdown-manager; default 15s)
  --stop-timeout D        ENVOY_LIFECYCLE_STOP_TIMEOUT for the app (envoy, istio)
  --no-fix-grace          fail instead of raising a terminationGracePeriodSeconds
                          shorter than the drain budget + 2s

Exit codes: 0 done; 64 bad command line or config; 65 manifest not YAML (a
Helm template too) or a field of the wrong shape; 66 cannot read an input;
73 cannot write the output; 78 the manifest does not fit (a config entry not
found, an app without a command, grace period too short with
--no-fix-grace); 70 internal error.
`

// stringList is a repeatable flag; commas separate values too.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// durationFlag reads a duration by the rule every mode shares
// (settings.ParseDuration: 20 is 20s, as are 20s and 0.33m).
type durationFlag struct {
	d    *time.Duration
	name string
	bad  *error
}

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := settings.ParseDuration(s)
	if err != nil {
		*f.bad = &settings.Error{Name: "--" + f.name, Value: s, Valid: settings.ValidDuration, Err: err}
		return *f.bad
	}
	*f.d = d
	return nil
}

// repeated is a repeatable flag whose values are kept whole.
type repeated []string

func (s *repeated) String() string     { return strings.Join(*s, " ") }
func (s *repeated) Set(v string) error { *s = append(*s, v); return nil }

// injectFlags are the inject subcommand's flags.
type injectFlags struct {
	config, output, preset, image, proxy string
	entrypointsFile                      string
	entrypoints                          repeated
	apps                                 stringList
	adminPort                            int
	deadline, stop                       time.Duration
	dryRun, noFixGrace, noIstioStub      bool
}

// runInject is the inject subcommand: it parses args, reads the manifest
// (from stdin for "-"), and writes the result over it, to -o, or as a
// diff with --dry-run. Notes and errors go to stderr; the notes of a
// change only once it is written. It returns the exit code (inject.Exit*)
// and never leaves the output half-written.
func runInject(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f injectFlags
	fs := flag.NewFlagSet("envoy-lifecycle inject", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, n := range []string{"c", "config"} {
		fs.StringVar(&f.config, n, "", "")
	}
	for _, n := range []string{"o", "output"} {
		fs.StringVar(&f.output, n, "", "")
	}
	fs.StringVar(&f.preset, "preset", "", "")
	fs.Var(&f.entrypoints, "entrypoint", "")
	fs.StringVar(&f.entrypointsFile, "entrypoints", "", "")
	fs.StringVar(&f.image, "image", "", "")
	fs.StringVar(&f.proxy, "proxy-container", "", "")
	fs.Var(&f.apps, "app-container", "")
	fs.IntVar(&f.adminPort, "admin-port", 0, "")
	var bad error // a bad duration, reported as one settings.Error line
	fs.Var(durationFlag{&f.deadline, "drain-deadline", &bad}, "drain-deadline", "")
	fs.Var(durationFlag{&f.stop, "stop-timeout", &bad}, "stop-timeout", "")
	fs.BoolVar(&f.dryRun, "dry-run", false, "")
	fs.BoolVar(&f.noFixGrace, "no-fix-grace", false, "")
	fs.BoolVar(&f.noIstioStub, "no-istio-stub", false, "")

	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "envoy-lifecycle inject: "+format+" (see envoy-lifecycle inject --help)\n", a...)
		return inject.ExitUsage
	}
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, wrapHelp(injectUsage))
		return inject.ExitOK
	}
	if bad != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle inject: %v\n", bad)
		return inject.ExitUsage
	}
	if err != nil {
		return usageErr("%v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	o, code := f.options(set, usageErr)
	if code != inject.ExitOK {
		return code
	}
	if len(pos) != 1 {
		return usageErr("want one manifest file (- for stdin), got %d", len(pos))
	}
	manifest := pos[0]
	if f.config == "-" && manifest == "-" {
		return usageErr("the config and the manifest cannot both come from stdin")
	}
	if f.entrypointsFile == "-" && manifest == "-" {
		return usageErr("the entrypoints file and the manifest cannot both come from stdin")
	}
	if f.entrypointsFile != "" {
		if code := addEntrypoints(&o, f.entrypointsFile, stdin, stderr); code != inject.ExitOK {
			return code
		}
	}
	if f.config != "" {
		src, name, err := readInput(f.config, stdin)
		if err != nil {
			fmt.Fprintln(stderr, "envoy-lifecycle inject: "+err.Error())
			return inject.ExitNoInput
		}
		if o.Config, err = inject.ParseConfig(name, src); err != nil {
			writeInjectErr(stderr, err)
			return inject.ExitCode(err)
		}
	}
	src, name, err := readInput(manifest, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "envoy-lifecycle inject: "+err.Error())
		return inject.ExitNoInput
	}
	// inject is one short batch whose garbage is parse trees: collecting
	// less often cut its CPU by a third on a 5 MB file (issue 13), and the
	// soft limit, which grows with the input so that a large file is not
	// collected over and over, keeps a 5 MB file under 100 MB. Restored
	// on return, for callers in the same process (tests).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(max(80<<20, 16*int64(len(src)))))
	out, notes, err := inject.Inject(name, src, o)
	if err != nil {
		printNotes(stderr, notes)
		writeInjectErr(stderr, err)
		return inject.ExitCode(err)
	}

	dest := f.output
	if dest == "" {
		dest = manifest
	}
	switch {
	case f.dryRun:
		to := dest
		if to == "-" {
			to = "<stdout>"
		}
		if bytes.Equal(src, out) {
			printNotes(stderr, notes)
			fmt.Fprintln(stderr, "envoy-lifecycle inject: "+name+": no changes")
			return inject.ExitOK
		}
		if _, err := io.WriteString(stdout, udiff.Unified(name, to, string(src), string(out))); err != nil {
			fmt.Fprintln(stderr, "envoy-lifecycle inject: cannot write the diff: "+err.Error())
			return inject.ExitCantCreate
		}
	case dest == "-":
		if _, err := stdout.Write(out); err != nil {
			fmt.Fprintln(stderr, "envoy-lifecycle inject: cannot write to stdout: "+err.Error())
			return inject.ExitCantCreate
		}
	default:
		if err := writeFile(dest, out); err != nil {
			fmt.Fprintln(stderr, "envoy-lifecycle inject: "+err.Error())
			return inject.ExitCantCreate
		}
	}
	printNotes(stderr, notes)
	return inject.ExitOK
}

func printNotes(w io.Writer, notes []string) {
	for _, n := range notes {
		fmt.Fprintln(w, "envoy-lifecycle inject: note: "+n)
	}
}

// errorLines splits joined errors into one message each.
func errorLines(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorLines(e)...)
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

// writeInjectErr prints err to w, one "envoy-lifecycle inject: " line per
// error.
func writeInjectErr(w io.Writer, err error) {
	for _, l := range errorLines(err) {
		fmt.Fprintln(w, "envoy-lifecycle inject: "+l)
	}
}

// options checks the flags against each other and builds inject.Options.
func (f *injectFlags) options(set map[string]bool, usageErr func(string, ...any) int) (inject.Options, int) {
	o := inject.Options{
		Preset: f.preset, IstioStub: !f.noIstioStub, FixGrace: !f.noFixGrace,
		Image: f.image, AppContainers: f.apps, ProxyContainer: f.proxy,
		AdminPort: f.adminPort, DrainDeadline: f.deadline, StopTimeout: f.stop,
	}
	presets := inject.Presets
	switch {
	case f.config == "" && f.preset == "":
		return o, usageErr("give a config (-c FILE) or a preset (--preset %s)", strings.Join(presets, "|"))
	case f.config != "" && f.preset != "":
		return o, usageErr("give a config (-c) or a preset (--preset), not both")
	case f.preset != "" && !slices.Contains(presets, f.preset):
		return o, usageErr("--preset %q: unknown preset (valid: %s)", f.preset, strings.Join(presets, ", "))
	}
	presetOnly := []string{"image", "entrypoint", "entrypoints", "app-container", "proxy-container", "admin-port", "drain-deadline", "stop-timeout", "no-fix-grace"}
	for _, n := range presetOnly {
		if set[n] && f.preset == "" {
			return o, usageErr("--%s needs --preset", n)
		}
	}
	if f.preset == "shutdown-manager" {
		for _, n := range []string{"entrypoint", "entrypoints", "app-container", "stop-timeout"} {
			if set[n] {
				return o, usageErr("--%s does not apply to --preset shutdown-manager", n)
			}
		}
	}
	if set["no-istio-stub"] && f.preset != "" && f.preset != "istio" {
		return o, usageErr("--no-istio-stub applies to -c and --preset istio only")
	}
	switch {
	case set["admin-port"] && (f.adminPort < 1 || f.adminPort > 65535):
		return o, usageErr("--admin-port %d: not a port (valid: 1 to 65535)", f.adminPort)
	case set["drain-deadline"] && f.deadline <= 0:
		return o, usageErr("%v", &settings.Error{Name: "--drain-deadline", Value: f.deadline.String(), Valid: "more than 0: " + settings.ValidDuration, Err: settings.ErrOutOfRange})
	case set["stop-timeout"] && f.stop <= 0:
		return o, usageErr("%v", &settings.Error{Name: "--stop-timeout", Value: f.stop.String(), Valid: "more than 0: " + settings.ValidDuration, Err: settings.ErrOutOfRange})
	case set["image"] && strings.TrimSpace(f.image) == "":
		return o, usageErr("--image: empty")
	case set["proxy-container"] && f.proxy == "":
		return o, usageErr("--proxy-container: empty")
	case set["proxy-container"] && slices.Contains(f.apps, f.proxy):
		return o, usageErr("--proxy-container %q is also an --app-container", f.proxy)
	}
	for _, v := range f.entrypoints {
		name, cmd := splitEntrypoint(v)
		ep, err := parseEntrypoint(cmd)
		if err != nil {
			return o, usageErr("--entrypoint %q: %v", v, err)
		}
		switch {
		case name == "" && o.Entrypoint != nil:
			return o, usageErr("--entrypoint %q: a default entrypoint is already given (%q); name the container: --entrypoint NAME=CMD", v, strings.Join(o.Entrypoint, " "))
		case name == "":
			o.Entrypoint = ep
		case o.Entrypoints[name] != nil:
			return o, usageErr("--entrypoint %q: container %q already has one", v, name)
		default:
			if o.Entrypoints == nil {
				o.Entrypoints = map[string][]string{}
			}
			o.Entrypoints[name] = ep
		}
	}
	return o, inject.ExitOK
}

// addEntrypoints adds the --entrypoints file's entries to o; a container
// that --entrypoint NAME=CMD names too is an error.
func addEntrypoints(o *inject.Options, path string, stdin io.Reader, stderr io.Writer) int {
	src, name, err := readInput(path, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "envoy-lifecycle inject: "+err.Error())
		return inject.ExitNoInput
	}
	eps, err := inject.ParseEntrypoints(name, src)
	if err != nil {
		writeInjectErr(stderr, err)
		return inject.ExitCode(err)
	}
	for _, c := range slices.Sorted(maps.Keys(eps)) {
		if o.Entrypoints[c] != nil {
			fmt.Fprintf(stderr, "envoy-lifecycle inject: %s: container %q has an entrypoint in the file and from --entrypoint %s=...; give one\n", name, c, c)
			return inject.ExitUsage
		}
		if o.Entrypoints == nil {
			o.Entrypoints = map[string][]string{}
		}
		o.Entrypoints[c] = eps[c]
	}
	return inject.ExitOK
}

// containerName is a Kubernetes container name (an RFC 1123 label).
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// splitEntrypoint splits "NAME=CMD" when what comes before the first "="
// is a container name; else the whole value is the command.
func splitEntrypoint(v string) (name, cmd string) {
	if n, c, ok := strings.Cut(v, "="); ok && containerName.MatchString(n) {
		return n, c
	}
	return "", v
}

// parseEntrypoint reads --entrypoint: a JSON list of strings, or words
// separated by spaces.
func parseEntrypoint(s string) ([]string, error) {
	var out []string
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal([]byte(t), &out); err != nil {
			return nil, errors.New("not a JSON list of strings")
		}
	} else {
		out = strings.Fields(s)
	}
	if len(out) == 0 || out[0] == "" {
		return nil, errors.New("empty")
	}
	return out, nil
}

// parseInterleaved parses flags that may come after the positional
// arguments, as in "inject manifest.yaml -c config.yaml"; "-" is a
// positional argument (stdin or stdout), and after "--" every argument is.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// readInput reads a file, or stdin for "-", and returns the name to use in
// messages.
func readInput(path string, stdin io.Reader) ([]byte, string, error) {
	if path == "-" {
		if stdin == nil {
			return nil, "<stdin>", errors.New("<stdin>: no standard input")
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, "<stdin>", fmt.Errorf("cannot read <stdin>: %w", err)
		}
		return b, "<stdin>", nil
	}
	b, err := os.ReadFile(path)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// PathError's text starts with the operation ("open x: ..."); say
		// what we tried once.
		return nil, path, fmt.Errorf("cannot read %s: %w", path, pe.Err)
	}
	if err != nil {
		return nil, path, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return b, path, nil
}

// writeFile replaces path with data through a temporary file in the same
// directory and a rename. It keeps the file's mode and owner, refuses a
// file the user could not write, writes through a symlink to its target,
// and leaves a file that already holds data alone. A character device or
// a named pipe (/dev/null, /dev/stdout, a FIFO) is written directly: it
// can't be replaced.
func writeFile(path string, data []byte) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	perm := os.FileMode(0o644)
	owner := -1
	var gid int
	if fi, err := os.Stat(path); err == nil {
		switch m := fi.Mode(); {
		case m&(os.ModeCharDevice|os.ModeNamedPipe) != 0:
			return writeDirect(path, data)
		case !m.IsRegular():
			return fmt.Errorf("cannot write %s: not a regular file, a character device or a named pipe", path)
		}
		perm = fi.Mode().Perm()
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return nil
		}
		// Replacing goes through the directory, which would let a user
		// replace a file they may not write (root ignores the mode, so
		// a file without its owner's write bit is refused too).
		if perm&0o200 == 0 || syscall.Access(path, 2 /* W_OK */) != nil {
			return fmt.Errorf("cannot write %s: permission denied (mode %04o): make it writable, or write elsewhere with -o", path, perm)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
			owner, gid = int(st.Uid), int(st.Gid)
		}
	}
	return writeAtomic(path, perm, owner, gid, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, func() error { return writeInPlace(path, data) })
}

// writeInPlace truncates and writes path, which keeps its owner, for a
// file another user owns whose owner a new file cannot take.
func writeInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// writeDirect writes data to an existing file that is not a regular one.
func writeDirect(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
