// Command envoy-lifecycle starts and stops an app and its Envoy sidecar in the
// right order. See README.md.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// version and commit are stamped at build time with -ldflags -X.
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
	"help":             func(_ []string, stdout, _ io.Writer) int { usage(stdout); return 0 },
	"version":          func(_ []string, stdout, _ io.Writer) int { printVersion(stdout); return 0 },
	"shutdown-manager": runShutdownManager,
	"drain":            runDrain,
	"doctor":           runDoctor,
	"inject":           func(args []string, stdout, stderr io.Writer) int { return runInject(args, os.Stdin, stdout, stderr) },
	"install":          runInstall,
}

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
	case a == "-h" || a == "--help":
		usage(stdout)
		return 0
	case a == "--version":
		printVersion(stdout)
		return 0
	case strings.HasPrefix(a, "-"):
		fmt.Fprintf(stderr, "envoy-lifecycle: unknown option %q (valid: --help, --version; put -- before a command that starts with -)\n", a)
		return exitUsage
	case subcommands[a] != nil:
		return subcommands[a](args[1:], stdout, stderr)
	}
	return wrap(args, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `envoy-lifecycle starts and stops an app and its Envoy sidecar in the right order.

Usage:
  envoy-lifecycle [--] CMD ARGS...   wrap CMD: wait for Envoy, run CMD, stop the proxy
  envoy-lifecycle shutdown-manager   sidecar that drains Envoy from preStop hooks (--help: its flags)
  envoy-lifecycle drain              drain Envoy once, as an exec preStop hook (--help: its flags)
  envoy-lifecycle help               this text
  envoy-lifecycle version            version, commit and Go version
  envoy-lifecycle doctor             check the configuration and the proxy, print a report
  envoy-lifecycle inject ...         add lifecycle hooks to Kubernetes manifests (--help: its flags)
  envoy-lifecycle install DIR        copy this binary to DIR/envoy-lifecycle (for an init container)

Wrap mode is configured by the environment:

`)
	printEnvUsage(w, wrapDefaults())
	fmt.Fprintf(w, `
Exit codes: the app's own code; 126 not executable; 127 not found; 128+n app died
of signal n (or signal n arrived while waiting for Envoy); %d bad usage or
configuration; %d Envoy not LIVE within QUIT_WITHOUT_ENVOY_TIMEOUT; %d internal error.
`, exitUsage, exitUnavailable, exitSoftware)
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "envoy-lifecycle %s (commit %s, %s)\n", version, commit, runtime.Version())
}
