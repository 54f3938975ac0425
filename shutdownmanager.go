package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/doctor"
	"envoy-lifecycle/envoy"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/settings"
	"envoy-lifecycle/shutdownmgr"
)

// pid1Stdout is where `drain` copies its logs when run as an exec hook, so
// they show in `kubectl logs` (Envoy Gateway does the same).
var pid1Stdout = "/proc/1/fd/1"

// Which subcommands read a setting.
type cmdMask uint8

const (
	forManager cmdMask = 1 << iota
	forDrain
	forBoth = forManager | forDrain
)

// mgrSetting is one setting of the shutdown-manager or drain subcommand:
// flag names (the first is the primary one, the rest aliases), environment
// variables, default, origin and meaning. The one table drives parsing,
// --help and shutdownmgr/README.md.
type mgrSetting struct {
	flags  []string
	env    []string
	def    string
	from   string
	desc   string
	valid  string
	isBool bool
	secret bool // its value is never echoed in an error
	isURL  bool // its value is echoed through envoy.RedactAddress
	cmds   cmdMask
	set    func(string) error
}

// mgrConfig is the parsed settings of shutdown-manager and drain.
type mgrConfig struct {
	port              int
	address           string
	admin             string
	adminScheme       string
	adminHost         string
	adminPort         int
	requestTimeout    time.Duration
	startDelay        time.Duration
	delay             time.Duration
	delayAuto         bool          // --delay=auto
	quietWindow       time.Duration // with --delay=auto
	delayMax          time.Duration // with --delay=auto; 0: half the deadline
	period            time.Duration
	deadline          time.Duration
	minConns          uint64
	drainListeners    bool
	skipExit          bool
	inboundOnly       bool
	count             string
	include           *regexp.Regexp
	exclude           *regexp.Regexp
	readyFile         string
	readyFileOnly     bool
	readyFileInterval time.Duration
	stateFile         string
	token             string
	maxWaiters        int
	maxConns          int  // 0: the server's default
	allowRemoteDrain  bool // lifts the loopback rule for tokenless drains
	interval          time.Duration
	cooldown          time.Duration
	waitzTimeout      time.Duration
	shutdownTimeout   time.Duration
	drainOnSignal     bool
	logHits           bool
	logLevel          string
	logFormat         string
	logToPID1         string

	adminURL string             // resolved from admin or its parts
	selector envoy.Selector     // from count, include, exclude
	sources  []string           // setting=where, for settings with several names; the last wins
	warnings []settings.Warning // names ignored or outvoted, logged at start
}

// settings returns the table, bound to c's fields.
func (c *mgrConfig) settings() []*mgrSetting {
	return []*mgrSetting{
		{flags: []string{"port", "serve-port"}, env: []string{"SHUTDOWN_MANAGER_PORT", "PORT"}, def: strconv.Itoa(shutdownmgr.DefaultPort), cmds: forManager,
			from: "all three (9001, 8090, 8080); --serve-port: Contour; PORT: k8s-prestop-sidecar", valid: "a port from 0 to 65535 (0: any free port)",
			desc: "Port to listen on. 8090 as Contour and marin3r: 9001 is old Contour's Envoy admin port, 8080 often the app's.",
			set:  intSetter(&c.port, 0, 65535)},
		{flags: []string{"address"}, env: []string{"SHUTDOWN_MANAGER_ADDRESS"}, cmds: forManager, valid: "an IP address, localhost, or empty for all",
			desc: "Address to bind. Empty: all interfaces, since kubelet's httpGet hooks and load balancers reach the pod IP. 127.0.0.1 when only exec hooks call it.",
			set: func(s string) error {
				s = strings.TrimSpace(s)
				if s != "" && s != "localhost" {
					if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err != nil {
						return errors.New("not an IP address")
					}
				}
				c.address = strings.Trim(s, "[]")
				return nil
			}},
		{flags: []string{"envoy-admin"}, env: []string{"ENVOY_ADMIN_API"}, cmds: forBoth, from: "wrap mode; Contour (unix socket path)", isURL: true,
			valid: settings.ValidAdmin,
			desc:  "Envoy admin address. Wins over the three parts below.",
			set: func(s string) error {
				a, err := settings.ParseAdmin(s)
				if err != nil {
					return err
				}
				c.admin = a
				return nil
			}},
		{flags: []string{"envoy-admin-scheme"}, env: []string{"SHUTDOWN_MANAGER_ENVOY_ADMIN_SCHEME"}, def: "http", cmds: forBoth, from: "shutdown handler",
			valid: "http or https", desc: "Envoy admin scheme.", set: oneOf(&c.adminScheme, "http", "https")},
		{flags: []string{"envoy-admin-host"}, env: []string{"SHUTDOWN_MANAGER_ENVOY_ADMIN_HOST"}, def: "localhost", cmds: forBoth, from: "shutdown handler",
			valid: "a host name or IP address", desc: "Envoy admin host.",
			set: func(s string) error {
				s = strings.Trim(strings.TrimSpace(s), "[]")
				if s == "" || strings.ContainsAny(s, "/?#@ ") {
					return errors.New("not a host")
				}
				c.adminHost = s
				return nil
			}},
		{flags: []string{"envoy-admin-port"}, env: []string{"SHUTDOWN_MANAGER_ENVOY_ADMIN_PORT"}, def: "9901", cmds: forBoth, from: "shutdown handler",
			valid: settings.ValidInt(1, 65535), desc: "Envoy admin port.", set: intSetter(&c.adminPort, 1, 65535)},
		{flags: []string{"request-timeout"}, env: []string{"SHUTDOWN_MANAGER_REQUEST_TIMEOUT"}, def: "1s", cmds: forBoth,
			valid: "a duration greater than 0 (" + validDuration + ")", desc: "Timeout of each Envoy admin request.",
			set: positive(durationSetter(&c.requestTimeout), &c.requestTimeout)},
		{flags: []string{"start-drain-delay", "drain-delay"}, env: []string{"SHUTDOWN_MANAGER_START_DRAIN_DELAY"}, def: "0s", cmds: forBoth,
			from: "marin3r; --drain-delay: Contour", valid: validDuration,
			desc: "Wait before failing Envoy's health checks, at the very start of the drain.", set: durationSetter(&c.startDelay)},
		{flags: []string{"delay", "check-drain-delay", "check-delay", "initial-delay-seconds"}, env: []string{"SHUTDOWN_MANAGER_DELAY"}, def: "5s", cmds: forBoth,
			from: "shutdown handler (?delay=, 0); marin3r --check-drain-delay (15s); Contour --check-delay", valid: validDuration + "; or auto",
			desc: "Wait after failing health checks, before draining listeners and counting connections, so load balancers stop sending new requests. auto: until no new inbound connection or request arrived for --quiet-window (the fixed 5s if the stats are missing). ?delay= overrides it.",
			set:  autoDelaySetter(&c.delay, &c.delayAuto)},
		{flags: []string{"quiet-window"}, env: []string{"SHUTDOWN_MANAGER_QUIET_WINDOW"}, def: "1s", cmds: forBoth, valid: "a duration greater than 0 (" + validDuration + ")",
			desc: "With --delay=auto: how long no new inbound connection or request (downstream_cx_total, downstream_rq_total) must arrive before listeners drain.",
			set:  positive(durationSetter(&c.quietWindow), &c.quietWindow)},
		{flags: []string{"delay-max"}, env: []string{"SHUTDOWN_MANAGER_DELAY_MAX"}, def: "0s", cmds: forBoth, valid: validDuration + "; 0: half the deadline",
			desc: "With --delay=auto: the longest delay, however the traffic goes (keep-alive clients that never stop). 0: half the deadline, or none with --deadline=0, like the rest of the drain.", set: durationSetter(&c.delayMax)},
		{flags: []string{"period", "check-drain-interval", "check-interval", "check-period-seconds"}, env: []string{"SHUTDOWN_MANAGER_PERIOD"}, def: "1s", cmds: forBoth,
			from: "shutdown handler (?period=, 5s); marin3r --check-drain-interval (5s); Contour --check-interval", valid: "a duration of at least " + shutdownmgr.MinPeriod.String() + " (" + validDuration + ")",
			desc: "Interval between connection polls; /shutdown returns within one period of the count reaching the minimum. ?period= overrides it.",
			set: func(v string) error {
				if err := positive(durationSetter(&c.period), &c.period)(v); err != nil {
					return err
				}
				if c.period < shutdownmgr.MinPeriod {
					return fmt.Errorf("below the minimum %s", shutdownmgr.MinPeriod)
				}
				return nil
			}},
		{flags: []string{"deadline", "check-deadline-seconds"}, env: []string{"SHUTDOWN_MANAGER_DEADLINE"}, def: "300s", cmds: forBoth,
			from: "shutdown handler (?deadline=)", valid: validDuration + "; 0: none",
			desc: "Longest drain, delays included, and longest wait of /shutdown, /waitforshutdown and the ready-file waits (408 past it). ?deadline= overrides it.",
			set:  durationSetter(&c.deadline)},
		{flags: []string{"min-open-connections"}, env: []string{"SHUTDOWN_MANAGER_MIN_OPEN_CONNECTIONS"}, def: "0", cmds: forBoth,
			from: "marin3r, Contour", valid: settings.ValidInt(0, math.MaxInt64),
			desc: "The drain ends once open connections are at or below this.",
			set: func(s string) error {
				n, err := settings.ParseInt(s, 0, math.MaxInt64)
				if err != nil {
					return err
				}
				c.minConns = uint64(n)
				return nil
			}},
		{flags: []string{"drain-listeners"}, env: []string{"SHUTDOWN_MANAGER_DRAIN_LISTENERS"}, def: "true", isBool: true, cmds: forBoth,
			from: "shutdown handler (true); marin3r and Contour never drain (false)", valid: validBool,
			desc: "POST /drain_listeners?graceful after the delay. false only fails health checks and counts.", set: boolSetter(&c.drainListeners)},
		{flags: []string{"skip-exit"}, env: []string{"SHUTDOWN_MANAGER_SKIP_EXIT"}, def: "false", isBool: true, cmds: forBoth,
			from: "Istio, Envoy Gateway", valid: validBool,
			desc: "Add skip_exit to /drain_listeners (Envoy 1.28+): listeners, the readiness one included, stay up after the drain time.", set: boolSetter(&c.skipExit)},
		{flags: []string{"inbound-only"}, env: []string{"SHUTDOWN_MANAGER_INBOUND_ONLY"}, def: "false", isBool: true, cmds: forBoth,
			valid: validBool, desc: "Drain only listeners with traffic_direction INBOUND (most ingress listeners have none set).", set: boolSetter(&c.inboundOnly)},
		{flags: []string{"count"}, env: []string{"SHUTDOWN_MANAGER_COUNT"}, def: "connections", cmds: forBoth, valid: "connections or requests",
			desc: "What is counted: connections (listener.*.downstream_cx_active, TCP and HTTP) or requests (http.*.downstream_rq_active).",
			set:  oneOf(&c.count, "connections", "requests")},
		{flags: []string{"include"}, env: []string{"SHUTDOWN_MANAGER_INCLUDE"}, cmds: forBoth, valid: "a Go (RE2) regular expression",
			desc: "Regexp of the stat names to sum, replacing the default of --count.", set: regexpSetter(&c.include)},
		{flags: []string{"exclude"}, env: []string{"SHUTDOWN_MANAGER_EXCLUDE"}, cmds: forBoth, valid: "a Go (RE2) regular expression",
			desc: "Regexp of the stat names to leave out, replacing the default (admin, per-worker, internal and Istio listeners).", set: regexpSetter(&c.exclude)},
		{flags: []string{"ready-file"}, env: []string{"SHUTDOWN_MANAGER_READY_FILE"}, def: "/tmp/shutdown-ok", cmds: forBoth,
			from: "marin3r (/tmp/shutdown-ok), Contour (/admin/ok)", valid: "a file path, or empty for none",
			desc: "Written when a drain finishes (unless cancelled); removed when the manager or a drain starts. Share it through an emptyDir.",
			set:  stringSetter(&c.readyFile)},
		{flags: []string{"ready-file-only"}, env: []string{"SHUTDOWN_MANAGER_READY_FILE_ONLY"}, def: "false", isBool: true, cmds: forManager,
			from: "Contour, marin3r (their /shutdown)", valid: validBool,
			desc: "/shutdown and /waitforshutdown wait for the ready file instead of draining: the drain runs as `envoy-lifecycle drain` elsewhere.",
			set:  boolSetter(&c.readyFileOnly)},
		{flags: []string{"ready-file-interval"}, env: []string{"SHUTDOWN_MANAGER_READY_FILE_INTERVAL"}, def: settings.FormatDuration(shutdownmgr.DefaultReadyFileInterval), cmds: forManager,
			from: "marin3r, Contour (1s)", valid: "a duration greater than 0 (" + validDuration + ")",
			desc: "How often a missing ready file is checked for.", set: positive(durationSetter(&c.readyFileInterval), &c.readyFileInterval)},
		{flags: []string{"state-file"}, env: []string{"SHUTDOWN_MANAGER_STATE_FILE"}, def: "/tmp/envoy-lifecycle-shutdown.state", cmds: forBoth,
			from: "contour#4851", valid: "a file path, or empty for none",
			desc: "Records that a drain failed Envoy's health checks; a manager that starts and finds it POSTs /healthcheck/ok. Put it on an emptyDir so it outlives a restart.",
			set:  stringSetter(&c.stateFile)},
		{flags: []string{"token"}, env: []string{"SHUTDOWN_MANAGER_TOKEN"}, cmds: forManager, valid: "printable characters without spaces",
			secret: true,
			desc:   "Shared token required in the " + shutdownmgr.TokenHeader + " header of /shutdown, /drain, /waitforshutdown, /shutdown/ready and /waitz (401 missing, 403 wrong).",
			set: func(s string) error {
				for _, r := range s {
					if r <= ' ' || r == 0x7f {
						return errors.New("contains a space or control character")
					}
				}
				c.token = s
				return nil
			}},
		{flags: []string{"max-waiters"}, env: []string{"SHUTDOWN_MANAGER_MAX_WAITERS"}, def: strconv.Itoa(shutdownmgr.DefaultMaxWaiters), cmds: forManager,
			valid: settings.ValidInt(1, 100000), desc: "Most requests waiting at once; past it they get 503.", set: intSetter(&c.maxWaiters, 1, 100000)},
		{flags: []string{"max-conns"}, env: []string{"SHUTDOWN_MANAGER_MAX_CONNS"}, def: "0", cmds: forManager,
			valid: "0, or a whole number above --max-waiters, up to 1000000",
			desc:  fmt.Sprintf("Most connections open at once; past it new ones are closed as soon as accepted. 0: %d, or --max-waiters + 64 when larger.", shutdownmgr.DefaultMaxConns),
			set:   intSetter(&c.maxConns, 0, 1000000)},
		{flags: []string{"allow-remote-drain"}, env: []string{"SHUTDOWN_MANAGER_ALLOW_REMOTE_DRAIN"}, def: "false", isBool: true, cmds: forManager, valid: validBool,
			desc: "Without --token, let clients outside loopback start or join a drain (/drain, /shutdown). Only on a network you trust: anyone who reaches the port can drain Envoy.",
			set:  boolSetter(&c.allowRemoteDrain)},
		{flags: []string{"interval"}, env: []string{"SHUTDOWN_MANAGER_INTERVAL", "INTERVAL"}, def: "10s", cmds: forManager, from: "k8s-prestop-sidecar (INTERVAL)", valid: validDuration,
			desc: "Quiet window: /waitz (and the exit after SIGTERM) wait until no load-balancer hit was seen for this long. Not the poll interval (--period).",
			set:  durationSetter(&c.interval)},
		{flags: []string{"cooldown"}, env: []string{"SHUTDOWN_MANAGER_COOLDOWN", "COOLDOWN"}, def: "10s", cmds: forManager, from: "k8s-prestop-sidecar (COOLDOWN)", valid: validDuration,
			desc: "Waited after the quiet window before /waitz returns.", set: durationSetter(&c.cooldown)},
		{flags: []string{"log-hits", "log"}, env: []string{"SHUTDOWN_MANAGER_LOG_HITS", "LOG"}, def: "false", isBool: true, cmds: forManager, from: "k8s-prestop-sidecar (LOG=yes)", valid: validBool,
			desc: "Log every load-balancer hit at info. Not the log level: a bare LOG other than yes or no is ignored with a warning.", set: boolSetter(&c.logHits)},
		{flags: []string{"waitz-timeout"}, env: []string{"SHUTDOWN_MANAGER_WAITZ_TIMEOUT"}, def: "10m", cmds: forManager, valid: validDuration + "; 0: none",
			desc: "Longest /waitz waits for the hits to stop (408 past it).", set: durationSetter(&c.waitzTimeout)},
		{flags: []string{"shutdown-timeout"}, env: []string{"SHUTDOWN_MANAGER_SHUTDOWN_TIMEOUT"}, def: settings.FormatDuration(shutdownmgr.DefaultShutdownTimeout), cmds: forManager,
			valid: "a duration greater than 0 (" + validDuration + ")", desc: "On exit, longest wait for answers in flight to finish.",
			set: positive(durationSetter(&c.shutdownTimeout), &c.shutdownTimeout)},
		{flags: []string{"drain-on-signal"}, env: []string{"SHUTDOWN_MANAGER_DRAIN_ON_SIGNAL"}, def: "false", isBool: true, cmds: forManager, valid: validBool,
			desc: "SIGTERM/SIGINT to the manager also start the drain. Not restart-safe: Kubernetes also stops a container it restarts alone.",
			set:  boolSetter(&c.drainOnSignal)},
		{flags: []string{"log-to-pid1"}, env: []string{"SHUTDOWN_MANAGER_LOG_TO_PID1"}, def: "auto", cmds: forDrain, from: "Envoy Gateway", valid: "auto, or " + validBool,
			desc: "Also write the logs to " + pid1Stdout + " so an exec hook's lines show in kubectl logs. auto: when not PID 1 and writable. Never fatal.",
			set: func(s string) error {
				if strings.EqualFold(strings.TrimSpace(s), "auto") {
					c.logToPID1 = "auto"
					return nil
				}
				b, err := settings.ParseBool(s)
				c.logToPID1 = strconv.FormatBool(b)
				return err
			}},
		{flags: []string{"log-level"}, env: []string{"ENVOY_LIFECYCLE_LOG_LEVEL"}, def: "info", cmds: forBoth, valid: settings.ValidLogLevel,
			desc: "Log level.",
			set: func(s string) (err error) {
				c.logLevel, err = settings.ParseLogLevel(s)
				return err
			}},
		{flags: []string{"log-format"}, env: []string{"ENVOY_LIFECYCLE_LOG_FORMAT"}, def: "text", cmds: forBoth, from: "marin3r used JSON: set json", valid: settings.ValidLogFormat,
			desc: "Log format, as in every mode; logs go to stderr.",
			set: func(s string) (err error) {
				c.logFormat, err = settings.ParseLogFormat(s)
				return err
			}},
	}
}

// isSeedName reports whether name is one of k8s-prestop-sidecar's bare
// variables (PORT, LOG, INTERVAL, COOLDOWN), which other containers of a pod
// may carry too.
func isSeedName(name string) bool {
	return !strings.Contains(name, "_")
}

// setSeed applies a seed's bare variable where its meaning is unambiguous:
// LOG only as yes or no (k8s-prestop-sidecar read nothing else as true;
// LOG=debug is some other program's level), the others when they parse.
// Anything else is ignored with a warning instead of stopping the manager:
// it is probably another container's. It reports whether v was used.
func (c *mgrConfig) setSeed(env *settings.Env, s *mgrSetting, name, v string) bool {
	if s.isBool {
		if v != "yes" && v != "no" {
			env.Warn(name, v, "unset", `k8s-prestop-sidecar's `+name+` is "yes" or "no"; set --`+s.flags[0]+` or `+s.env[0]+` instead`)
			return false
		}
		v = strconv.FormatBool(v == "yes")
	}
	if err := s.set(v); err != nil {
		env.Warn(name, v, "unset", "not "+s.valid+" ("+err.Error()+"), so probably another container's; set --"+s.flags[0]+" or "+s.env[0]+" instead")
		if def := s.def; def != "" {
			_ = s.set(def)
		}
		return false
	}
	return true
}

// parseMgrConfig reads defaults, then the environment, then flags (which
// win), then checks the settings against each other. help is true when
// --help was asked for.
func parseMgrConfig(cmd cmdMask, args []string) (c *mgrConfig, help bool, err error) {
	c = &mgrConfig{}
	env := &settings.Env{}
	defer func() {
		if c != nil {
			c.warnings = env.Warnings
		}
	}()
	table := c.settings()
	for _, s := range table {
		if s.cmds&cmd == 0 {
			continue
		}
		if err := s.set(s.def); err != nil && s.def != "" {
			return nil, false, fmt.Errorf("internal error: default of --%s: %w", s.flags[0], err)
		}
		// The prefixed name is listed first and wins over a seed's bare
		// one, which another container may share through envFrom.
		name, v, ok := env.Pick(s.env...)
		switch {
		case !ok:
			continue
		case isSeedName(name):
			if !c.setSeed(env, s, name, v) {
				continue
			}
		default:
			if err := s.set(v); err != nil {
				return nil, false, &ConfigError{Name: name, Value: s.shown(v), Valid: s.valid, Err: err}
			}
		}
		if len(s.env) > 1 {
			c.sources = append(c.sources, s.flags[0]+"="+name)
		}
	}
	fs := flag.NewFlagSet("envoy-lifecycle", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var bad *ConfigError
	for _, s := range table {
		if s.cmds&cmd == 0 {
			continue
		}
		for _, name := range s.flags {
			fs.Var(settingFlag{s: s, name: name, bad: &bad, sources: &c.sources}, name, s.desc)
		}
	}
	if err := fs.Parse(args); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return nil, true, nil
		case bad != nil:
			return nil, false, bad
		}
		return nil, false, &usageError{fmt.Sprintf("%v (valid: the flags listed by --help)", err)}
	}
	if fs.NArg() > 0 {
		return nil, false, &usageError{fmt.Sprintf("unexpected argument %q (valid: flags only; see --help)", fs.Arg(0))}
	}
	return c, false, c.resolve()
}

// resolve checks the settings against each other and derives the rest.
func (c *mgrConfig) resolve() error {
	c.adminURL = c.admin
	if c.adminURL == "" {
		c.adminURL = c.adminScheme + "://" + net.JoinHostPort(c.adminHost, strconv.Itoa(c.adminPort))
		if _, err := envoy.ParseAdminURL(c.adminURL); err != nil {
			return &ConfigError{Name: "--envoy-admin-host", Value: c.adminHost, Valid: "a host name or IP address", Err: errors.New(settings.AdminReason(err))}
		}
	}
	if need := c.startDelay + c.delay + c.period; c.deadline > 0 && c.deadline < need {
		return &ConfigError{Name: "--deadline", Value: settings.FormatDuration(c.deadline),
			Valid: "0, or at least start-drain-delay+delay+period (" + settings.FormatDuration(need) + ")", Err: errors.New("too short")}
	}
	switch c.count {
	case "requests":
		c.selector = envoy.DefaultRequestSelector()
	default:
		c.selector = envoy.DefaultConnSelector()
	}
	if c.include != nil {
		// The default's server-side filter would hide what a custom
		// include selects; the include itself then filters.
		c.selector.Include, c.selector.Filter = c.include, ""
	}
	if c.exclude != nil {
		c.selector.Exclude = c.exclude
	}
	if c.readyFileOnly && c.readyFile == "" {
		return &ConfigError{Name: "--ready-file", Value: "", Valid: "a file path when --ready-file-only is set", Err: errors.New("missing")}
	}
	// Waiters at the cap would lock out the probes and the load-balancer path.
	if c.maxConns != 0 && c.maxConns <= c.maxWaiters {
		return &ConfigError{Name: "--max-conns", Value: strconv.Itoa(c.maxConns),
			Valid: fmt.Sprintf("0, or a whole number above --max-waiters (%d)", c.maxWaiters), Err: errors.New("not above --max-waiters")}
	}
	return nil
}

// logSources logs, once at start, which name each setting with several
// names was taken from (a flag, the prefixed variable or a seed's bare one),
// and the names ignored or outvoted.
func (c *mgrConfig) logSources(log hclog.Logger) {
	last := map[string]string{}
	var order []string
	for _, src := range c.sources {
		setting, from, _ := strings.Cut(src, "=")
		if _, seen := last[setting]; !seen {
			order = append(order, setting)
		}
		last[setting] = from
	}
	for _, setting := range order {
		log.Info("setting taken from", "setting", "--"+setting, "from", last[setting])
	}
	logWarnings(log, c.warnings)
}

// newLogger builds the root logger: text by default, as in every mode.
func (c *mgrConfig) newLogger(w io.Writer) hclog.Logger {
	return newRootLogger(w, c.logLevel, c.logFormat)
}

// drain is the drain engine these settings describe.
func (c *mgrConfig) drain(admin *envoy.Client, log hclog.Logger) quit.Drain {
	return quit.Drain{
		Admin:              admin,
		StartDelay:         c.startDelay,
		Delay:              c.delay,
		SkipDrainListeners: !c.drainListeners,
		SkipExit:           c.skipExit,
		InboundOnly:        c.inboundOnly,
		Period:             c.period,
		Deadline:           c.deadline,
		MinConnections:     c.minConns,
		Selector:           c.selector,
		Quiet:              c.autoDelay(),
		Arrivals:           c.arrivals(),
		Logger:             log.Named("drain").With("context", "drain"),
	}
}

// server is the manager these settings describe.
func (c *mgrConfig) server(admin *envoy.Client, log hclog.Logger) *shutdownmgr.Server {
	return &shutdownmgr.Server{
		Addr:              net.JoinHostPort(c.address, strconv.Itoa(c.port)),
		Drain:             c.drain(admin, log),
		ReadyFile:         c.readyFile,
		ReadyFileOnly:     c.readyFileOnly,
		ReadyFileInterval: c.readyFileInterval,
		StateFile:         c.stateFile,
		Token:             c.token,
		MaxWaiters:        c.maxWaiters,
		MaxConns:          c.maxConns,
		AllowRemoteDrain:  c.allowRemoteDrain,
		Interval:          c.interval,
		Cooldown:          c.cooldown,
		WaitzTimeout:      c.waitzTimeout,
		LogHits:           c.logHits,
		DrainOnTerminate:  c.drainOnSignal,
		ShutdownTimeout:   c.shutdownTimeout,
		Logger:            log,
	}
}

// parseOrExit parses the settings of one subcommand. ok false means the
// subcommand is over with code (help printed, or a bad setting reported in
// one line).
func parseOrExit(name string, cmd cmdMask, args []string, stdout, stderr io.Writer) (c *mgrConfig, code int, ok bool) {
	c, help, err := parseMgrConfig(cmd, args)
	switch {
	case help:
		printMgrUsage(stdout, name, cmd)
		return nil, 0, false
	case err != nil:
		fmt.Fprintf(stderr, "envoy-lifecycle %s: %v\n", name, err)
		return nil, exitCode(err), false
	}
	return c, 0, true
}

// runShutdownManager is `envoy-lifecycle shutdown-manager`: serve until
// SIGTERM or SIGINT, then fail readiness, wait until nothing is left to do
// (a running drain, load-balancer hits), finish answers in flight and exit 0.
// A second signal skips the waiting.
func runShutdownManager(args []string, stdout, stderr io.Writer) int {
	// First, so a signal during start-up can't kill the manager the
	// default way.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	cfg, code, ok := parseOrExit("shutdown-manager", forManager, args, stdout, stderr)
	if !ok {
		return code
	}
	root := cfg.newLogger(stderr)
	log := root.Named("shutdown-manager")
	cfg.logSources(log)
	admin, err := envoy.New(cfg.adminURL, envoy.Options{Timeout: cfg.requestTimeout, Logger: root.Named("envoy")})
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle shutdown-manager: %v\n", err)
		return exitCode(err)
	}
	if u := admin.Base(); u.Scheme == "unix" {
		// Said once at start-up: otherwise the first sign is a drain failing
		// in a preStop hook.
		if err := doctor.CheckSocket(u.Path); err != nil {
			log.Error("admin socket not connectable; drains will fail", "error", err)
		}
	}
	srv := cfg.server(admin, log)
	if err := srv.Open(); err != nil {
		log.Error("cannot start", "error", err)
		return exitCode(err)
	}

	if err := srv.Run(sigs); err != nil {
		return exitCode(err)
	}
	return 0
}

// printMgrUsage prints one subcommand's settings, from the table, wrapped
// at cli.Width.
func printMgrUsage(w io.Writer, name string, cmd cmdMask) {
	var intro string
	switch name {
	case "drain":
		intro = drainUsage
	default:
		intro = `Usage: envoy-lifecycle shutdown-manager [FLAGS]

A sidecar that drains Envoy from Kubernetes preStop hooks (see shutdownmgr/README.md). Endpoints: /shutdown and /drain start or join the one drain and wait for it (200, 408 at the deadline); /waitforshutdown waits for it without starting it; /shutdown/ready waits for the ready file; /healthz 200; /readyz 200, 503 once terminating; /waitz waits until load-balancer hits stop; /status JSON; any other path is a load-balancer hit (200, 503 once terminating). Query: ?delay=&period=&deadline= (seconds or 500ms). Token header: ` + shutdownmgr.TokenHeader + `. Without --token only loopback clients may start or join a drain (/drain, /shutdown); others get 403 unless --allow-remote-drain is set.
`
	}
	io.WriteString(w, wrapHelp(intro+`
Each flag also reads its environment variables; a flag wins, then the first variable listed. The bare PORT, LOG, INTERVAL and COOLDOWN (k8s-prestop-sidecar's) are used only when their value means what it meant there; otherwise they are ignored with a warning, since another container may share them. Durations: `+validDuration+`. Booleans: `+validBool+`.

`))
	var c mgrConfig
	var vars []settings.Var
	for _, s := range c.settings() {
		if s.cmds&cmd == 0 {
			continue
		}
		v := settings.Var{Name: "--" + strings.Join(s.flags, ", --"), Default: s.def, From: s.from, Desc: s.desc}
		if len(s.env) > 0 {
			v.Name += " (" + strings.Join(s.env, ", ") + ")"
		}
		vars = append(vars, v)
	}
	settings.WriteUsage(w, vars)
}

// writeMgrMarkdown writes shutdownmgr/README.md's settings table from the
// same table as --help; TestSettingsTableInReadme keeps them equal.
func writeMgrMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| Flag (aliases) | Environment | Default | Cmd | From | Meaning |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	cell := func(s string) string {
		if s == "" {
			return "–"
		}
		return strings.ReplaceAll(s, "|", `\|`)
	}
	var c mgrConfig
	for _, s := range c.settings() {
		cmd := map[cmdMask]string{forManager: "manager", forDrain: "drain", forBoth: "both"}[s.cmds]
		def := "–"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		fmt.Fprintf(w, "| `--%s` | `%s` | %s | %s | %s | %s |\n", strings.Join(s.flags, "`<br>`--"), strings.Join(s.env, "`<br>`"),
			def, cmd, cell(s.from), cell(s.desc))
	}
}

// autoDelaySetter reads --delay: "auto", or a duration (which turns auto
// off again, so a later flag wins over the environment).
func autoDelaySetter(dst *time.Duration, auto *bool) func(string) error {
	set := durationSetter(dst)
	return func(s string) error {
		if strings.EqualFold(strings.TrimSpace(s), "auto") {
			*auto = true
			return nil
		}
		if err := set(s); err != nil {
			return err
		}
		*auto = false
		return nil
	}
}

// autoDelay is the drain's adaptive delay, nil unless --delay=auto. The
// fixed --delay (5s by default) stays its fallback for missing stats.
func (c *mgrConfig) autoDelay() *quit.Quiet {
	if !c.delayAuto {
		return nil
	}
	return &quit.Quiet{Window: c.quietWindow, Max: c.delayMax}
}

// arrivals watches new traffic with the same --include/--exclude as the
// count, on the side --count names.
func (c *mgrConfig) arrivals() envoy.Arrivals {
	if c.include == nil && c.exclude == nil {
		return envoy.Arrivals{}
	}
	if c.count == "requests" {
		return envoy.Arrivals{Request: c.selector}
	}
	return envoy.Arrivals{Conn: c.selector}
}
