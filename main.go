// Command envoy-lifecycle starts and stops an app and its Envoy sidecar in the
// right order. See README.md.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"sort"
	"strings"

	"envoy-lifecycle/cli"
)

// version and commit are stamped at build time with -ldflags -X; a plain
// go build falls back to the build info's VCS revision (cli.BuildVersion).
var (
	version = "dev"
	commit  = "none"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// subcommands maps each mode to its entry point. A first argument that is not
// one of them is a command to wrap, as with envoy-preflight.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"version":          runVersion,
	"shutdown-manager": runShutdownManager,
	"drain":            runDrain,
	"doctor":           runDoctor,
	"inject":           func(args []string, stdout, stderr io.Writer) int { return runInject(args, os.Stdin, stdout, stderr) },
	"install":          runInstall,
}

// help reads subcommands, so it joins them at init.
func init() { subcommands["help"] = runHelp }

// subcommandNames lists the subcommands, sorted, for messages.
func subcommandNames() []string {
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "envoy-lifecycle: missing command (usage: envoy-lifecycle [--] CMD ARGS..., or envoy-lifecycle help)")
		return exitUsage
	}
	switch a := args[0]; {
	case a == "--":
		if len(args) == 1 {
			fmt.Fprintln(stderr, "envoy-lifecycle: missing command after -- (usage: envoy-lifecycle [--] CMD ARGS...)")
			return exitUsage
		}
		return wrap(args[1:], stderr)
	case isHelp(a):
		return runHelp(args[1:], stdout, stderr)
	case a == "--version":
		return runVersion(args[1:], stdout, stderr)
	case strings.HasPrefix(a, "-"):
		fmt.Fprintf(stderr, "envoy-lifecycle: unknown option %q (valid: --help, --version; put -- before a command that starts with -)\n", a)
		return exitUsage
	case subcommands[a] != nil:
		return subcommands[a](args[1:], stdout, stderr)
	}
	// A typo of a subcommand would otherwise run as a program and fail with
	// 127; a program of that name in PATH still runs.
	if s := cli.Suggest(args[0], subcommandNames(), inPath); s != "" {
		fmt.Fprintf(stderr, "envoy-lifecycle: %q is not a subcommand nor a program in PATH; did you mean \"envoy-lifecycle %s\"? (to wrap a program, give its path, or put -- before it)\n", args[0], s)
		return exitUsage
	}
	return wrap(args, stderr)
}

// inPath reports whether name runs as a program: found in PATH as a shell
// would, which is how the wrap mode looks it up.
func inPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// runHelp is `help [SUBCOMMAND]`: this text, or that subcommand's --help.
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		usage(stdout)
		return 0
	case len(args) == 1 && (args[0] == "help" || isHelp(args[0])):
		usage(stdout)
		return 0
	case len(args) == 1 && subcommands[args[0]] != nil:
		return subcommands[args[0]]([]string{"--help"}, stdout, stderr)
	case len(args) == 1 && args[0] == "wrap":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "envoy-lifecycle help: unknown topic %q (valid: one of %s, or nothing)\n", strings.Join(args, " "), strings.Join(subcommandNames(), ", "))
	return exitUsage
}

// runVersion is `version [--json]`.
func runVersion(args []string, stdout, stderr io.Writer) int {
	asJSON := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case isHelp(a):
			fmt.Fprint(stdout, wrapHelp("Usage: envoy-lifecycle version [--json | -o json]\n\nPrints the version, the commit (stamped at build time, else the revision Go recorded in the build info; \"modified\" when built from a tree with changes) and the Go version. --json prints one JSON object: version, commit, modified, build_time, go_version.\n"))
			return 0
		case a == "--json" || a == "-json" || a == "-o=json" || a == "--output=json":
			asJSON = true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			asJSON = true
			i++
		default:
			fmt.Fprintf(stderr, "envoy-lifecycle version: unexpected argument %q (valid: --json, -o json, --help)\n", a)
			return exitUsage
		}
	}
	bi, _ := debug.ReadBuildInfo()
	if err := cli.BuildVersion(version, commit, bi).Write(stdout, asJSON); err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle version: %v\n", err)
		return exitSoftware
	}
	return 0
}

func usage(w io.Writer) {
	var b strings.Builder
	fmt.Fprint(&b, `envoy-lifecycle starts and stops an app and its Envoy sidecar in the right order.

Usage:
  envoy-lifecycle [--] CMD ARGS...   wrap CMD: wait for Envoy, run CMD, stop the proxy
  envoy-lifecycle shutdown-manager   sidecar that drains Envoy from preStop hooks (--help: its flags)
  envoy-lifecycle drain              drain Envoy once, as an exec preStop hook (--help: its flags)
  envoy-lifecycle help [SUBCOMMAND]  this text, or a subcommand's --help
  envoy-lifecycle version [--json]   version, commit and Go version
  envoy-lifecycle doctor             check the configuration and the proxy, print a report
  envoy-lifecycle inject ...         add lifecycle hooks to Kubernetes manifests (--help: its flags)
  envoy-lifecycle install DIR        copy this binary to DIR/envoy-lifecycle (for an init container)

Values, in every mode: durations are Go durations (500ms, 30s, 1m30s) or bare seconds (5, 2.5); our booleans are true, false, 1, 0, yes, no, on or off (any case); admin addresses are http://host:port, https://host:port, unix:///path.sock or an absolute socket path; an empty variable is unset. Variables inherited from envoy-preflight and scuttle keep their rules (README.md, Migration).

Wrap mode is configured by the environment:

`)
	io.WriteString(w, wrapHelp(b.String()))
	printEnvUsage(w, wrapDefaults())
	fmt.Fprint(w, wrapHelp(fmt.Sprintf(`
Exit codes: the app's own code; 126 not executable; 127 not found; 128+n app died of signal n (or signal n arrived while waiting for Envoy); %d bad usage or configuration; %d Envoy not LIVE within QUIT_WITHOUT_ENVOY_TIMEOUT; %d internal error.
`, exitUsage, exitUnavailable, exitSoftware)))
}
