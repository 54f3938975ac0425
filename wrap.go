package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/kelseyhightower/envconfig"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/wrapper"
)

// Config is the wrap mode's configuration, read from the environment.
//
// The variables of envoy-preflight and scuttle keep their names (they share
// no prefix); our own settings are named ENVOY_LIFECYCLE_*. envconfig is
// called with an empty prefix so each tag is the whole variable name and no
// prefixed fallback is ever consulted.
type Config struct {
	AdminAPI                string        `envconfig:"ENVOY_ADMIN_API" from:"envoy-preflight, scuttle" desc:"Envoy admin address: http://, https:// or unix:///path.sock. Unset: just run the app (local development), unless USE_ISTIO_ENDPOINT."`
	KillAPI                 string        `envconfig:"ENVOY_KILL_API" from:"envoy-preflight" desc:"Full URL POSTed to stop Envoy, instead of ENVOY_ADMIN_API/quitquitquit."`
	NeverKillEnvoy          bool          `envconfig:"NEVER_KILL_ENVOY" default:"false" from:"envoy-preflight" desc:"Never stop the proxy."`
	AlwaysKillEnvoy         bool          `envconfig:"ALWAYS_KILL_ENVOY" default:"false" from:"envoy-preflight" desc:"Accepted for compatibility; stopping the proxy on every exit path is already the default."`
	StartWithoutEnvoy       bool          `envconfig:"START_WITHOUT_ENVOY" default:"false" from:"envoy-preflight, scuttle" desc:"Do not wait for Envoy to be LIVE; still stop it when the app exits."`
	IstioQuitAPI            string        `envconfig:"ISTIO_QUIT_API" from:"scuttle, envoy-preflight fork" desc:"pilot-agent status address (e.g. http://127.0.0.1:15020); POST /quitquitquit there stops Istio's proxy."`
	GenericQuitEndpoints    []string      `envconfig:"GENERIC_QUIT_ENDPOINTS" from:"scuttle, envoy-preflight fork" desc:"Comma-separated URLs POSTed first when the app exits (other sidecars). Their status is logged, not used."`
	GenericQuitOnly         bool          `envconfig:"GENERIC_QUIT_ONLY" default:"false" from:"kvij/scuttle" desc:"Only call GENERIC_QUIT_ENDPOINTS; do not stop Istio or Envoy."`
	NeverKillIstio          bool          `envconfig:"NEVER_KILL_ISTIO" default:"false" from:"scuttle, envoy-preflight fork" desc:"Never stop the proxy (nor call the generic endpoints)."`
	NeverKillIstioOnFailure bool          `envconfig:"NEVER_KILL_ISTIO_ON_FAILURE" default:"false" from:"scuttle, envoy-preflight fork" desc:"Do not stop the proxy when the app exits non-zero (lets restartPolicy: OnFailure retry in the same pod)."`
	WaitForEnvoyTimeout     time.Duration `envconfig:"WAIT_FOR_ENVOY_TIMEOUT" from:"scuttle" desc:"Start the app anyway if Envoy is not LIVE after this long. 0: no such limit."`
	QuitWithoutEnvoyTimeout time.Duration `envconfig:"QUIT_WITHOUT_ENVOY_TIMEOUT" from:"scuttle" desc:"Give up if Envoy is not LIVE after this long: stop the proxy and exit 69. Wins over WAIT_FOR_ENVOY_TIMEOUT. Default 10m when neither is set; 0 waits forever."`
	QuitRequestTimeout      time.Duration `envconfig:"QUIT_REQUEST_TIMEOUT" default:"5s" from:"kvij/scuttle" desc:"Timeout of each quit request."`
	PreflightLogging        *bool         `envconfig:"ENVOY_PREFLIGHT_LOGGING" from:"envoy-preflight" desc:"false: log errors only. true or unset: lifecycle lines. ENVOY_LIFECYCLE_LOG_LEVEL wins."`
	ScuttleLogging          *bool         `envconfig:"SCUTTLE_LOGGING" from:"scuttle" desc:"Same as ENVOY_PREFLIGHT_LOGGING. Logs go to stderr, not stdout."`
	IstioFallbackPkill      bool          `envconfig:"ISTIO_FALLBACK_PKILL" default:"false" from:"scuttle, envoy-preflight fork" desc:"If Istio's quit API is unset or fails, send SIGINT to processes named pilot-agent (needs shareProcessNamespace). No shell or pkill is used."`
	UseIstioEndpoint        bool          `envconfig:"USE_ISTIO_ENDPOINT" default:"false" from:"envoy-preflight fork" desc:"Default ENVOY_ADMIN_API to http://127.0.0.1:15000 and ISTIO_QUIT_API to http://127.0.0.1:15020."`

	LogLevel            string        `envconfig:"ENVOY_LIFECYCLE_LOG_LEVEL" default:"info" desc:"trace, debug, info, warn, error or off."`
	LogFormat           string        `envconfig:"ENVOY_LIFECYCLE_LOG_FORMAT" default:"text" desc:"text or json. Logs always go to stderr."`
	RequestTimeout      time.Duration `envconfig:"ENVOY_LIFECYCLE_REQUEST_TIMEOUT" default:"1s" desc:"Timeout of each admin request (readiness polls, drain calls)."`
	PollInitial         time.Duration `envconfig:"ENVOY_LIFECYCLE_POLL_INITIAL" default:"20ms" desc:"First interval between readiness polls; it grows x1.5 up to ENVOY_LIFECYCLE_POLL_MAX."`
	PollMax             time.Duration `envconfig:"ENVOY_LIFECYCLE_POLL_MAX" default:"44ms" desc:"Longest interval between readiness polls. 44ms keeps the wait under 25 requests a second and the start delay after LIVE under 50ms; its median is about half of it."`
	QuitRetries         int           `envconfig:"ENVOY_LIFECYCLE_QUIT_RETRIES" default:"3" desc:"Attempts of each quit request on a network error or 5xx."`
	QuitVerify          time.Duration `envconfig:"ENVOY_LIFECYCLE_QUIT_VERIFY" default:"1s" desc:"After quitting, wait up to this long to confirm the proxy went away (only logged). 0: do not check."`
	Drain               bool          `envconfig:"ENVOY_LIFECYCLE_DRAIN" default:"true" desc:"On a termination signal: fail Envoy's health checks, wait DRAIN_DELAY, drain inbound listeners and wait for connections, then forward the signal. false: forward at once, as envoy-preflight does."`
	DrainDelay          time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_DELAY" default:"5s" desc:"Wait after failing health checks, for endpoints and load balancers to stop sending new requests (Contour --check-delay, marin3r --check-drain-delay)."`
	DrainSkipIdle       bool          `envconfig:"ENVOY_LIFECYCLE_DRAIN_SKIP_IDLE" default:"true" desc:"Skip DRAIN_DELAY when the inbound listeners never accepted a connection (a Job: nothing routes to it), so a cancelled Job stops at once."`
	DrainPeriod         time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_PERIOD" default:"500ms" desc:"Interval between connection polls (Contour --check-interval, marin3r --check-drain-interval)."`
	DrainDeadline       time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_DEADLINE" default:"15s" desc:"Longest the drain may take, DRAIN_DELAY included; then the signal is forwarded anyway. 0: no limit (then no shutdown budget can be given)."`
	DrainMinConnections uint64        `envconfig:"ENVOY_LIFECYCLE_DRAIN_MIN_CONNECTIONS" default:"0" desc:"The drain ends once open connections are at or below this (Contour and marin3r --min-open-connections)."`
	DrainCount          string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_COUNT" default:"connections" desc:"What is counted: connections (listener.*.downstream_cx_active) or requests (http.*.downstream_rq_active)."`
	DrainInclude        string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_INCLUDE" desc:"Regexp of the stat names to sum, replacing the default of DRAIN_COUNT."`
	DrainExclude        string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_EXCLUDE" desc:"Regexp of the stat names to leave out, replacing the default (admin, per-worker, internal and Istio infrastructure listeners)."`
	StopTimeout         time.Duration `envconfig:"ENVOY_LIFECYCLE_STOP_TIMEOUT" default:"10s" desc:"After forwarding a termination signal, SIGKILL the app if it has not exited within this. 0: wait for it."`
	TermSignals         []string      `envconfig:"ENVOY_LIFECYCLE_TERM_SIGNALS" default:"TERM" desc:"Signals that start the graceful termination, comma-separated (TERM, INT, HUP, QUIT, USR1, USR2). Others are forwarded at once."`

	GracePeriod    string `envconfig:"ENVOY_LIFECYCLE_GRACE_PERIOD" desc:"The pod's terminationGracePeriodSeconds (30 or 30s), for doctor to check the drain budget against. Unset: Kubernetes' default, 30s."`
	TerminationLog string `envconfig:"ENVOY_LIFECYCLE_TERMINATION_LOG" default:"/dev/termination-log" desc:"File that gets one line saying why the wrapper exited (kubectl describe pod shows it). The default is only written if it exists; another path is created. Empty: none."`

	ProcessGroup bool `envconfig:"ENVOY_LIFECYCLE_PROCESS_GROUP" default:"false" desc:"Run the app in its own process group and signal the whole group."`
	Subreaper    bool `envconfig:"ENVOY_LIFECYCLE_SUBREAPER" default:"false" desc:"Become a child subreaper, so orphans are reaped even when not PID 1."`

	grace       time.Duration      // from GRACE_PERIOD; 30s when unset
	selector    envoy.Selector     // from DRAIN_COUNT, DRAIN_INCLUDE, DRAIN_EXCLUDE
	termSignals map[os.Signal]bool // from TERM_SIGNALS
}

// ShutdownBudget is lifecycle.ShutdownBudget of these settings.
func (c *Config) ShutdownBudget() time.Duration {
	return lifecycle.ShutdownBudget(c.DrainDeadline, c.StopTimeout)
}

// LoadConfig reads and validates the environment.
func LoadConfig() (*Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{Name: pe.KeyName, Value: pe.Value, Valid: validFor(pe.TypeName), Err: errors.New("cannot parse")}
		}
		return nil, &usageError{"cannot read environment: " + err.Error()}
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	return &c, nil
}

// resolve applies the compatibility rules and checks every value.
func (c *Config) resolve() error {
	if c.UseIstioEndpoint {
		if c.AdminAPI == "" {
			c.AdminAPI = "http://127.0.0.1:15000"
		}
		if c.IstioQuitAPI == "" {
			c.IstioQuitAPI = "http://127.0.0.1:15020"
		}
	}
	for name, v := range map[string]string{"ENVOY_ADMIN_API": c.AdminAPI, "ISTIO_QUIT_API": c.IstioQuitAPI} {
		if v == "" {
			continue
		}
		if _, err := envoy.ParseAdminURL(v); err != nil {
			return &ConfigError{Name: name, Value: v, Valid: "http://host:port, https://host:port or unix:///path.sock", Err: errors.New(addressReason(err))}
		}
	}
	if c.KillAPI != "" {
		if err := checkHTTPURL(c.KillAPI); err != nil {
			return &ConfigError{Name: "ENVOY_KILL_API", Value: c.KillAPI, Valid: "an http:// or https:// URL", Err: err}
		}
	}
	var generic []string
	for _, e := range c.GenericQuitEndpoints {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if err := checkHTTPURL(e); err != nil {
			return &ConfigError{Name: "GENERIC_QUIT_ENDPOINTS", Value: e, Valid: "comma-separated http:// or https:// URLs", Err: err}
		}
		generic = append(generic, e)
	}
	c.GenericQuitEndpoints = generic

	durations := []struct {
		name string
		d    time.Duration
		pos  bool // must be > 0
	}{
		{"WAIT_FOR_ENVOY_TIMEOUT", c.WaitForEnvoyTimeout, false},
		{"QUIT_WITHOUT_ENVOY_TIMEOUT", c.QuitWithoutEnvoyTimeout, false},
		{"QUIT_REQUEST_TIMEOUT", c.QuitRequestTimeout, true},
		{"ENVOY_LIFECYCLE_REQUEST_TIMEOUT", c.RequestTimeout, true},
		{"ENVOY_LIFECYCLE_POLL_INITIAL", c.PollInitial, true},
		{"ENVOY_LIFECYCLE_POLL_MAX", c.PollMax, true},
		{"ENVOY_LIFECYCLE_QUIT_VERIFY", c.QuitVerify, false},
		{"ENVOY_LIFECYCLE_DRAIN_DELAY", c.DrainDelay, false},
		{"ENVOY_LIFECYCLE_DRAIN_PERIOD", c.DrainPeriod, true},
		{"ENVOY_LIFECYCLE_DRAIN_DEADLINE", c.DrainDeadline, false},
		{"ENVOY_LIFECYCLE_STOP_TIMEOUT", c.StopTimeout, false},
	}
	for _, d := range durations {
		if d.d < 0 || (d.pos && d.d == 0) {
			valid := "a duration of 0 or more"
			if d.pos {
				valid = "a duration greater than 0"
			}
			return &ConfigError{Name: d.name, Value: os.Getenv(d.name), Valid: valid, Err: errors.New("out of range")}
		}
	}
	if c.PollInitial > c.PollMax {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_POLL_INITIAL", Value: os.Getenv("ENVOY_LIFECYCLE_POLL_INITIAL"), Valid: "at most ENVOY_LIFECYCLE_POLL_MAX (" + c.PollMax.String() + ")", Err: errors.New("out of range")}
	}
	if c.QuitRetries < 1 {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_QUIT_RETRIES", Value: os.Getenv("ENVOY_LIFECYCLE_QUIT_RETRIES"), Valid: "1 or more", Err: errors.New("out of range")}
	}
	if _, set := os.LookupEnv("WAIT_FOR_ENVOY_TIMEOUT"); !set {
		if _, set := os.LookupEnv("QUIT_WITHOUT_ENVOY_TIMEOUT"); !set {
			c.QuitWithoutEnvoyTimeout = lifecycle.DefaultQuitWithoutEnvoy
		}
	}

	if err := c.resolveDrain(); err != nil {
		return err
	}
	grace, err := parseGrace(c.GracePeriod)
	if err != nil {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_GRACE_PERIOD", Value: c.GracePeriod, Valid: "whole seconds such as 30, or a duration such as 45s", Err: err}
	}
	c.grace = grace

	c.LogLevel = strings.ToLower(strings.TrimSpace(c.LogLevel))
	if _, set := os.LookupEnv("ENVOY_LIFECYCLE_LOG_LEVEL"); !set {
		// The peers' switches only silence the lifecycle lines; errors still show,
		// because a silent failure to stop the proxy is what hangs Jobs.
		if (c.PreflightLogging != nil && !*c.PreflightLogging) || (c.ScuttleLogging != nil && !*c.ScuttleLogging) {
			c.LogLevel = "error"
		}
	}
	if c.LogLevel != "off" && hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_LOG_LEVEL", Value: os.Getenv("ENVOY_LIFECYCLE_LOG_LEVEL"), Valid: "trace, debug, info, warn, error or off", Err: errors.New("unknown level")}
	}
	c.LogFormat = strings.ToLower(strings.TrimSpace(c.LogFormat))
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_LOG_FORMAT", Value: os.Getenv("ENVOY_LIFECYCLE_LOG_FORMAT"), Valid: "text or json", Err: errors.New("unknown format")}
	}
	return nil
}

// parseGrace reads a grace period given as whole seconds, as in the pod spec,
// or as a duration.
func parseGrace(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 30 * time.Second, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("cannot parse")
	}
	return d, nil
}

// terminationSignals are the signals TERM_SIGNALS may name.
var terminationSignals = map[string]os.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP,
	"QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

func (c *Config) resolveDrain() error {
	switch c.DrainCount = strings.ToLower(strings.TrimSpace(c.DrainCount)); c.DrainCount {
	case "connections":
		c.selector = envoy.DefaultConnSelector()
	case "requests":
		c.selector = envoy.DefaultRequestSelector()
	default:
		return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_COUNT", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_COUNT"), Valid: "connections or requests", Err: errors.New("unknown count")}
	}
	for _, re := range []struct {
		name, value string
		dst         **regexp.Regexp
	}{
		{"ENVOY_LIFECYCLE_DRAIN_INCLUDE", c.DrainInclude, &c.selector.Include},
		{"ENVOY_LIFECYCLE_DRAIN_EXCLUDE", c.DrainExclude, &c.selector.Exclude},
	} {
		if re.value == "" {
			continue
		}
		r, err := regexp.Compile(re.value)
		if err != nil {
			return &ConfigError{Name: re.name, Value: re.value, Valid: "a Go (RE2) regular expression", Err: errors.New("cannot compile")}
		}
		*re.dst = r
	}
	c.termSignals = map[os.Signal]bool{}
	for _, name := range c.TermSignals {
		n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "SIG")
		sig, ok := terminationSignals[n]
		if !ok {
			return &ConfigError{Name: "ENVOY_LIFECYCLE_TERM_SIGNALS", Value: name, Valid: "TERM, INT, HUP, QUIT, USR1 or USR2, comma-separated", Err: errors.New("unknown signal")}
		}
		c.termSignals[sig] = true
	}
	if len(c.termSignals) == 0 {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_TERM_SIGNALS", Value: os.Getenv("ENVOY_LIFECYCLE_TERM_SIGNALS"), Valid: "one or more of TERM, INT, HUP, QUIT, USR1, USR2; ENVOY_LIFECYCLE_DRAIN=false forwards at once", Err: errors.New("empty")}
	}
	// The delay is part of the deadline: a delay that fills it would end
	// every drain before listeners are drained.
	if c.DrainDeadline > 0 && c.DrainDelay >= c.DrainDeadline {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY"), Valid: "less than ENVOY_LIFECYCLE_DRAIN_DEADLINE (" + c.DrainDeadline.String() + "), which includes it", Err: errors.New("out of range")}
	}
	return nil
}

// NewLogger builds the wrap mode's root logger: stderr only, because stdout
// is the app's.
func (c *Config) NewLogger(w io.Writer) hclog.Logger {
	return newRootLogger(w, c.LogLevel, c.LogFormat)
}

// wrap is the wrap mode: wait for Envoy, run the app, stop the proxy.
func wrap(argv []string, stderr io.Writer) int {
	// Installed before anything that can take time, and kept for the life of
	// the process: Go's default for TERM, INT and HUP is to exit, which is how
	// other wrappers die during the readiness wait without stopping Envoy.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, lifecycle.Forwarded...)

	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitCode(err)
	}
	log := cfg.NewLogger(stderr)
	opts, err := cfg.lifecycleOptions(argv, sigs, log)
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitCode(err)
	}
	r, err := lifecycle.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitCode(err)
	}
	if cfg.Subreaper {
		if err := wrapper.SetSubreaper(); err != nil {
			log.Warn("cannot become a child subreaper", "error", err)
		}
	}
	out := r.Run()
	lifecycle.WriteMessage(cfg.TerminationLog, out, log)
	return out.Code
}

// lifecycleOptions is the runner these settings describe.
func (c *Config) lifecycleOptions(argv []string, sigs <-chan os.Signal, log hclog.Logger) (lifecycle.Options, error) {
	o := lifecycle.Options{
		Signals:            sigs,
		TermSignals:        c.termSignals,
		StartWithoutEnvoy:  c.StartWithoutEnvoy,
		QuitWithoutEnvoy:   c.QuitWithoutEnvoyTimeout,
		WaitForEnvoy:       c.WaitForEnvoyTimeout,
		PollInitial:        c.PollInitial,
		PollMax:            c.PollMax,
		QuitRequestTimeout: c.QuitRequestTimeout,
		QuitRetries:        c.QuitRetries,
		QuitVerify:         c.QuitVerify,
		StopTimeout:        c.StopTimeout,
		ShutdownBudget:     c.ShutdownBudget(),
		Command:            argv[0],
		Args:               argv[1:],
		Setpgid:            c.ProcessGroup,
		Codes:              wrapCodes,
		Logger:             log,
		Stop: &quit.Policy{
			Generic:        c.GenericQuitEndpoints,
			GenericOnly:    c.GenericQuitOnly,
			Pkill:          c.IstioFallbackPkill,
			KillURL:        c.KillAPI,
			Never:          c.NeverKillEnvoy || c.NeverKillIstio,
			NeverOnFailure: c.NeverKillIstioOnFailure,
			Timeout:        c.QuitRequestTimeout,
			Retries:        c.QuitRetries,
			Verify:         c.QuitVerify,
			Logger:         log.Named("quit"),
		},
	}
	elog := log.Named("envoy")
	var err error
	if c.AdminAPI != "" {
		if o.Admin, err = envoy.New(c.AdminAPI, envoy.Options{Timeout: c.RequestTimeout, Logger: elog}); err != nil {
			return o, fmt.Errorf("ENVOY_ADMIN_API: %w", err)
		}
		// Quit requests get their own, longer timeout.
		if o.Stop.Envoy, err = envoy.New(c.AdminAPI, envoy.Options{Timeout: c.QuitRequestTimeout, Logger: elog}); err != nil {
			return o, fmt.Errorf("ENVOY_ADMIN_API: %w", err)
		}
	}
	if o.Admin != nil && c.Drain {
		o.Drain = &quit.Drain{
			Admin:          o.Admin,
			Delay:          c.DrainDelay,
			SkipIdleDelay:  c.DrainSkipIdle,
			InboundOnly:    true,
			Period:         c.DrainPeriod,
			Deadline:       c.DrainDeadline,
			MinConnections: c.DrainMinConnections,
			Selector:       c.selector,
			Logger:         log.Named("drain"),
		}
	}
	if c.IstioQuitAPI != "" {
		if o.Stop.Istio, err = envoy.New(c.IstioQuitAPI, envoy.Options{Timeout: c.QuitRequestTimeout, Logger: log.Named("istio")}); err != nil {
			return o, fmt.Errorf("ISTIO_QUIT_API: %w", err)
		}
	}
	return o, nil
}
