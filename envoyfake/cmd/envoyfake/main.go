// Command envoyfake runs the fake Envoy (admin API and traffic listener) and,
// optionally, a fake pilot-agent status port, so other processes can use it
// as "envoy". It prints one line once listening:
//
//	envoyfake admin=<url> listener=<addr> [agent=<url>]
//
// and exits 0 after /quitquitquit (Envoy's or the agent's) or on SIGTERM or
// SIGINT, as Envoy does. Flags it does not know, such as the Envoy command
// line pilot-agent passes (-c FILE --drain-time-s 45 ...), are ignored; the
// admin address is then read from the JSON bootstrap given with -c, if any.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"envoy-lifecycle/envoyfake"
)

// Exit codes: 0 on a clean stop, like Envoy; 1 when the fake cannot start;
// 2 for bad flags.
const (
	exitOK    = 0
	exitStart = 1
	exitUsage = 2
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

// config is the parsed command line.
type config struct {
	opts        envoyfake.Options
	agentAddr   string
	addressPath string // Envoy's --admin-address-path: write the admin address there
}

// run starts the fake and blocks until it quits or a signal arrives.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	cfg, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "envoyfake: %v\n", err)
		return exitUsage
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "envoyfake: "+format+"\n", a...) }
	cfg.opts.Logf = logf

	e, err := envoyfake.Start(cfg.opts)
	if err != nil {
		fmt.Fprintf(stderr, "envoyfake: cannot start: %v\n", err)
		return exitStart
	}
	defer e.Close()

	var agent *envoyfake.PilotAgent
	agentQuit := make(<-chan struct{}) // never ready without an agent
	if cfg.agentAddr != "" {
		agent, err = envoyfake.StartPilotAgent(e, envoyfake.AgentOptions{Addr: cfg.agentAddr, Logf: logf})
		if err != nil {
			fmt.Fprintf(stderr, "envoyfake: cannot start pilot-agent: %v\n", err)
			return exitStart
		}
		defer agent.Close()
		agentQuit = agent.Quit()
	}
	if cfg.addressPath != "" {
		addr := strings.TrimPrefix(strings.TrimPrefix(e.AdminURL(), "http://"), "unix://")
		if err := os.WriteFile(cfg.addressPath, []byte(addr), 0o644); err != nil {
			fmt.Fprintf(stderr, "envoyfake: cannot write admin address path: %v\n", err)
			return exitStart
		}
	}

	line := fmt.Sprintf("envoyfake admin=%s listener=%s", e.AdminURL(), e.ListenerAddr())
	if agent != nil {
		line += " agent=" + agent.URL()
	}
	fmt.Fprintln(stdout, line)

	select {
	case <-e.Quit():
		logf("quit via admin")
	case <-agentQuit:
		logf("quit via pilot-agent")
	case s := <-sigs:
		logf("got signal %v, exiting", s)
	}
	return exitOK
}

// parseArgs parses our flags and ignores everything else.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	o := &cfg.opts
	fs := flag.NewFlagSet("envoyfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.AdminAddr, "admin", "", "admin TCP address (default 127.0.0.1:0)")
	fs.StringVar(&o.AdminSocket, "admin-socket", "", "admin unix socket path (instead of -admin)")
	fs.StringVar(&o.ListenerAddr, "listener", "", "traffic listener address (default 127.0.0.1:0)")
	fs.DurationVar(&o.LiveAfter, "live-after", 0, "INITIALIZING for this long, then LIVE")
	fs.IntVar(&o.PreInitializing, "pre-initializing", 0, "answer PRE_INITIALIZING to the first N /server_info requests")
	fs.BoolVar(&o.NeverLive, "never-live", false, "stay INITIALIZING forever")
	fs.BoolVar(&o.BlackHole, "blackhole", false, "admin accepts connections and never answers")
	fs.StringVar(&o.Garbage, "garbage", "", "broken /server_info while not LIVE: html, truncated, 503, nonjson")
	fs.IntVar(&o.FailHealthcheckStatus, "fail-healthcheck-status", 0, "POST /healthcheck/fail answers this status and does nothing")
	// Not -version: Envoy's own --version is a boolean.
	fs.StringVar(&o.Version, "envoy-version", "", "Envoy release to claim and behave as (1.9.0 to 1.38.0; default 1.36.6)")
	fs.StringVar(&o.Upstream, "upstream", "", "host:port of the app; the listener proxies to it")
	fs.StringVar(&o.HealthPath, "health-path", "", "path the listener answers itself: 200, or 503 after /healthcheck/fail")
	fs.StringVar(&cfg.agentAddr, "pilot-agent", "", "also run a pilot-agent status port on this address")

	ours, envoyArgs := splitArgs(args, fs)
	if err := fs.Parse(ours); err != nil {
		return cfg, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cfg.addressPath = envoyArgs["admin-address-path"]
	if path := envoyArgs["c"] + envoyArgs["config-path"]; path != "" && !set["admin"] && !set["admin-socket"] {
		addr, sock, err := bootstrapAdmin(path)
		if err != nil {
			fmt.Fprintf(stderr, "envoyfake: ignoring bootstrap %s: %v\n", path, err)
		}
		o.AdminAddr, o.AdminSocket = addr, sock
	}
	return cfg, nil
}

// splitArgs keeps the arguments of flags fs defines and returns the others
// (Envoy's) as name → value. A foreign flag takes the next argument as its
// value unless it has "=value" or the next argument is itself a flag.
func splitArgs(args []string, fs *flag.FlagSet) (ours []string, foreign map[string]string) {
	foreign = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue // Envoy takes no positional arguments
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			ours = append(ours, a) // Parse prints the usage and returns ErrHelp
			continue
		}
		if f := fs.Lookup(name); f != nil {
			ours = append(ours, a)
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
				ours = append(ours, args[i+1])
				i++
			}
			continue
		}
		if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value = args[i+1]
			i++
		}
		foreign[name] = value
	}
	return ours, foreign
}

// bootstrapAdmin reads admin.address from a JSON Envoy bootstrap (the format
// pilot-agent writes). YAML bootstraps are not understood.
func bootstrapAdmin(path string) (addr, socket string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("cannot read bootstrap: %w", err)
	}
	var bs struct {
		Admin struct {
			Address struct {
				SocketAddress *struct {
					Address   string          `json:"address"`
					PortValue json.RawMessage `json:"port_value"`
				} `json:"socket_address"`
				Pipe *struct {
					Path string `json:"path"`
				} `json:"pipe"`
			} `json:"address"`
		} `json:"admin"`
	}
	if err := json.Unmarshal(b, &bs); err != nil {
		return "", "", fmt.Errorf("cannot parse bootstrap as JSON: %w", err)
	}
	a := bs.Admin.Address
	switch {
	case a.Pipe != nil && a.Pipe.Path != "":
		return "", a.Pipe.Path, nil
	case a.SocketAddress != nil:
		port, err := strconv.Atoi(strings.Trim(string(a.SocketAddress.PortValue), `"`))
		if err != nil {
			return "", "", fmt.Errorf("cannot parse admin port_value %s: %w", a.SocketAddress.PortValue, err)
		}
		host := a.SocketAddress.Address
		if host == "" || host == "localhost" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, strconv.Itoa(port)), "", nil
	}
	return "", "", errors.New("no admin address in bootstrap")
}
