package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/doctor"
	"envoy-lifecycle/envoy"
	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/readiness"
	"envoy-lifecycle/settings"
	"envoy-lifecycle/termlog"
	"envoy-lifecycle/wrapper"
)

// Config is the wrap mode's configuration, read from the environment by
// settings.Load: the variables of envoy-preflight and scuttle keep their
// names and their peers' rules; our own, ENVOY_LIFECYCLE_*, are strict.
type Config struct {
	AdminAPI                string        `envconfig:"ENVOY_ADMIN_API" kind:"admin" desc:"Envoy admin address: http://host:port, https://host:port, unix:///path.sock or an absolute socket path. Unset: just run the app (local development), unless USE_ISTIO_ENDPOINT."`
	KillAPI                 string        `envconfig:"ENVOY_KILL_API" kind:"url" desc:"Full URL POSTed to stop Envoy, instead of ENVOY_ADMIN_API/quitquitquit."`
	NeverKillEnvoy          bool          `envconfig:"NEVER_KILL_ENVOY" default:"false" desc:"Never stop the proxy."`
	AlwaysKillEnvoy         bool          `envconfig:"ALWAYS_KILL_ENVOY" default:"false" desc:"Accepted for compatibility; stopping the proxy on every exit path is already the default."`
	StartWithoutEnvoy       bool          `envconfig:"START_WITHOUT_ENVOY" default:"false" desc:"Do not wait for Envoy to be LIVE; still stop it when the app exits."`
	IstioQuitAPI            string        `envconfig:"ISTIO_QUIT_API" kind:"admin" desc:"pilot-agent status address (e.g. http://127.0.0.1:15020); POST /quitquitquit there stops Istio's proxy."`
	GenericQuitEndpoints    []string      `envconfig:"GENERIC_QUIT_ENDPOINTS" kind:"urls" desc:"Comma-separated URLs POSTed first when the app exits (other sidecars). Their status is logged, not used."`
	GenericQuitOnly         bool          `envconfig:"GENERIC_QUIT_ONLY" default:"false" desc:"Only call GENERIC_QUIT_ENDPOINTS; do not stop Istio or Envoy."`
	NeverKillIstio          bool          `envconfig:"NEVER_KILL_ISTIO" default:"false" desc:"Never stop the proxy (nor call the generic endpoints)."`
	NeverKillIstioOnFailure bool          `envconfig:"NEVER_KILL_ISTIO_ON_FAILURE" default:"false" desc:"Do not stop the proxy when the app exits non-zero (lets restartPolicy: OnFailure retry in the same pod)."`
	WaitForEnvoyTimeout     time.Duration `envconfig:"WAIT_FOR_ENVOY_TIMEOUT" show:"0" desc:"Start the app anyway if Envoy is not LIVE after this long. 0: no such limit."`
	QuitWithoutEnvoyTimeout time.Duration `envconfig:"QUIT_WITHOUT_ENVOY_TIMEOUT" show:"10m if neither is set" desc:"Give up if Envoy is not LIVE after this long: stop the proxy and exit 69. Wins over WAIT_FOR_ENVOY_TIMEOUT. Default 10m when neither is set; 0 waits forever."`
	QuitRequestTimeout      time.Duration `envconfig:"QUIT_REQUEST_TIMEOUT" min:"1ns" desc:"Timeout of each quit request."`
	PreflightLogging        *bool         `envconfig:"ENVOY_PREFLIGHT_LOGGING" desc:"false: log errors only. true or unset: lifecycle lines. ENVOY_LIFECYCLE_LOG_LEVEL wins."`
	ScuttleLogging          *bool         `envconfig:"SCUTTLE_LOGGING" desc:"Same as ENVOY_PREFLIGHT_LOGGING. Logs go to stderr, not stdout."`
	IstioFallbackPkill      bool          `envconfig:"ISTIO_FALLBACK_PKILL" default:"false" desc:"If Istio's quit API is unset or fails, send SIGINT to processes named pilot-agent (needs shareProcessNamespace). No shell or pkill is used."`
	UseIstioEndpoint        bool          `envconfig:"USE_ISTIO_ENDPOINT" default:"false" desc:"Default ENVOY_ADMIN_API to http://127.0.0.1:15000 and ISTIO_QUIT_API to http://127.0.0.1:15020."`

	LogLevel            string        `envconfig:"ENVOY_LIFECYCLE_LOG_LEVEL" default:"info" kind:"loglevel" desc:"trace, debug, info, warn, error or off."`
	LogFormat           string        `envconfig:"ENVOY_LIFECYCLE_LOG_FORMAT" default:"text" kind:"logformat" desc:"text or json. Logs always go to stderr."`
	RequestTimeout      time.Duration `envconfig:"ENVOY_LIFECYCLE_REQUEST_TIMEOUT" default:"1s" min:"1ms" desc:"Timeout of each admin request (readiness polls, drain calls)."`
	PollInitial         time.Duration `envconfig:"ENVOY_LIFECYCLE_POLL_INITIAL" default:"20ms" min:"1ms" desc:"First interval between readiness polls; it grows x1.5 up to ENVOY_LIFECYCLE_POLL_MAX."`
	PollMax             time.Duration `envconfig:"ENVOY_LIFECYCLE_POLL_MAX" default:"44ms" min:"1ms" desc:"Longest interval between readiness polls. 44ms keeps the wait under 25 requests a second and the start delay after LIVE under 50ms; its median is about half of it."`
	QuitRetries         int           `envconfig:"ENVOY_LIFECYCLE_QUIT_RETRIES" default:"3" min:"1" desc:"Attempts of each quit request on a network error or 5xx."`
	QuitVerify          time.Duration `envconfig:"ENVOY_LIFECYCLE_QUIT_VERIFY" default:"1s" desc:"After quitting, wait up to this long to confirm the proxy went away (only logged). 0: do not check."`
	Drain               bool          `envconfig:"ENVOY_LIFECYCLE_DRAIN" default:"true" desc:"On a termination signal: fail Envoy's health checks, wait DRAIN_DELAY, drain inbound listeners and wait for connections, then forward the signal. false: forward at once, as envoy-preflight does."`
	DrainDelay          string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_DELAY" desc:"Wait after failing health checks, for endpoints and load balancers to stop sending new requests. auto: until no new inbound connection or request arrived for DRAIN_QUIET, between DRAIN_DELAY_MIN and DRAIN_DELAY_MAX. A duration: that fixed time (Contour --check-delay, marin3r --check-drain-delay; 5s before December 2026)."`
	DrainQuiet          time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_QUIET" default:"1s" min:"1ms" desc:"With DRAIN_DELAY=auto: how long no new inbound connection or request (downstream_cx_total, downstream_rq_total) must arrive before listeners drain."`
	DrainDelayMin       time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_DELAY_MIN" default:"0s" desc:"With DRAIN_DELAY=auto: the shortest delay once any traffic was ever seen. A pod that never had any does not wait."`
	DrainDelayMax       time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_DELAY_MAX" default:"0s" desc:"With DRAIN_DELAY=auto: the longest delay, however the traffic goes (keep-alive clients that never stop). 0: half of DRAIN_DEADLINE (of its default when DRAIN_DEADLINE is 0)."`
	DrainSkipIdle       bool          `envconfig:"ENVOY_LIFECYCLE_DRAIN_SKIP_IDLE" default:"true" desc:"Skip a fixed DRAIN_DELAY when the inbound listeners never accepted a connection (a Job: nothing routes to it), so a cancelled Job stops at once. auto never waits then."`
	DrainPeriod         time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_PERIOD" default:"500ms" min:"1ms" desc:"Interval between connection polls (Contour --check-interval, marin3r --check-drain-interval)."`
	DrainDeadline       time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_DEADLINE" desc:"Longest the drain may take, DRAIN_DELAY included; then the signal is forwarded anyway. 0: no limit (then no shutdown budget can be given)."`
	DrainMinConnections uint64        `envconfig:"ENVOY_LIFECYCLE_DRAIN_MIN_CONNECTIONS" default:"0" desc:"The drain ends once open connections are at or below this (Contour and marin3r --min-open-connections)."`
	DrainCount          string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_COUNT" default:"connections" desc:"What is counted: connections (listener.*.downstream_cx_active) or requests (http.*.downstream_rq_active)."`
	DrainInclude        string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_INCLUDE" desc:"Regexp of the stat names to sum, replacing the default of DRAIN_COUNT."`
	DrainExclude        string        `envconfig:"ENVOY_LIFECYCLE_DRAIN_EXCLUDE" desc:"Regexp of the stat names to leave out, replacing the default (admin, per-worker, internal and Istio infrastructure listeners)."`
	StopTimeout         time.Duration `envconfig:"ENVOY_LIFECYCLE_STOP_TIMEOUT" desc:"After forwarding a termination signal, SIGKILL the app if it has not exited within this. 0: wait for it."`
	TermSignals         []string      `envconfig:"ENVOY_LIFECYCLE_TERM_SIGNALS" default:"TERM" desc:"Signals that start the graceful termination, comma-separated (TERM, INT, HUP, QUIT, USR1, USR2). Others are forwarded at once."`

	ReadyClusters         []string      `envconfig:"ENVOY_LIFECYCLE_READY_CLUSTERS" desc:"After LIVE, before the app starts: wait until each of these clusters (comma-separated names) is active in /clusters with a healthy or degraded host."`
	ReadyClustersTimeout  time.Duration `envconfig:"ENVOY_LIFECYCLE_READY_CLUSTERS_TIMEOUT" default:"30s" min:"1ms" desc:"How long READY_CLUSTERS is waited for."`
	ReadyClustersFatal    bool          `envconfig:"ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL" default:"false" desc:"true: READY_CLUSTERS not met in time stops the proxy and exits 69 without starting the app. false: log it and start the app anyway."`
	ReadyNoWarming        bool          `envconfig:"ENVOY_LIFECYCLE_READY_NO_WARMING" default:"false" desc:"After LIVE, before the app starts: wait until no cluster or listener is warming (cluster_manager.warming_clusters, listener_manager.total_listeners_warming)."`
	ReadyNoWarmingTimeout time.Duration `envconfig:"ENVOY_LIFECYCLE_READY_NO_WARMING_TIMEOUT" default:"30s" min:"1ms" desc:"How long READY_NO_WARMING is waited for."`
	ReadyNoWarmingFatal   bool          `envconfig:"ENVOY_LIFECYCLE_READY_NO_WARMING_FATAL" default:"false" desc:"As READY_CLUSTERS_FATAL, for READY_NO_WARMING."`
	ReadyURL              string        `envconfig:"ENVOY_LIFECYCLE_READY_URL" kind:"url" desc:"After LIVE, before the app starts: wait until a GET of this URL (through the proxy, e.g. a dependency's health path) answers 2xx. Each attempt is bounded by REQUEST_TIMEOUT; redirects are not followed."`
	ReadyURLTimeout       time.Duration `envconfig:"ENVOY_LIFECYCLE_READY_URL_TIMEOUT" default:"30s" min:"1ms" desc:"How long READY_URL is waited for."`
	ReadyURLFatal         bool          `envconfig:"ENVOY_LIFECYCLE_READY_URL_FATAL" default:"false" desc:"As READY_CLUSTERS_FATAL, for READY_URL."`

	GracePeriod    string `envconfig:"ENVOY_LIFECYCLE_GRACE_PERIOD" show:"30" desc:"The pod's terminationGracePeriodSeconds (30 or 30s): the start-up log and doctor warn when the shutdown budget exceeds it. Unset: Kubernetes' default, 30s."`
	TerminationLog string `envconfig:"ENVOY_LIFECYCLE_TERMINATION_LOG" empty:"none" desc:"File that gets one line saying why the wrapper exited (kubectl describe pod shows it). The default is only written if it exists; another path is created. Empty: none."`

	ProcessGroup *bool `envconfig:"ENVOY_LIFECYCLE_PROCESS_GROUP" show:"auto" desc:"Run the app in its own process group and signal the whole group; on a terminal the app's group gets its foreground. Unset: true when the wrapper leads the session of the terminal on its stdin (docker run -t), false otherwise."`
	Subreaper    bool  `envconfig:"ENVOY_LIFECYCLE_SUBREAPER" default:"false" desc:"Become a child subreaper, so orphans are reaped even when not PID 1."`

	grace       time.Duration      // from GRACE_PERIOD; 30s when unset
	graceSet    bool               // GRACE_PERIOD was set
	warnings    []settings.Warning // values read by a peer's rule, logged at start
	selector    envoy.Selector     // from DRAIN_COUNT, DRAIN_INCLUDE, DRAIN_EXCLUDE
	drainDelay  time.Duration      // from DRAIN_DELAY unless auto
	drainAuto   bool               // DRAIN_DELAY=auto
	termSignals map[os.Signal]bool // from TERM_SIGNALS
}

// ShutdownBudget is lifecycle.ShutdownBudget of these settings.
func (c *Config) ShutdownBudget() time.Duration {
	return lifecycle.ShutdownBudget(c.DrainDeadline, c.StopTimeout)
}

// wrapDefaults is the configuration before the environment is read. The
// defaults other code sizes things from are lifecycle's, not struct tags, so
// they exist once; help prints them from here.
func wrapDefaults() *Config {
	return &Config{
		QuitRequestTimeout: lifecycle.DefaultQuitRequestTimeout,
		DrainDelay:         lifecycle.DefaultDrainDelaySetting,
		DrainDeadline:      lifecycle.DefaultDrainDeadline,
		StopTimeout:        lifecycle.DefaultStopTimeout,
		TerminationLog:     termlog.Default,
	}
}

// defaultGrace is Kubernetes' default terminationGracePeriodSeconds.
const defaultGrace = 30 * time.Second

// LoadConfig reads and validates the environment.
func LoadConfig() (*Config, error) {
	return loadConfig(&settings.Env{})
}

func loadConfig(env *settings.Env) (*Config, error) {
	c := *wrapDefaults()
	// A field without a default tag keeps its preset value when its
	// variable is unset.
	if err := settings.Load(env, &c); err != nil {
		return nil, err
	}
	if err := c.resolve(env); err != nil {
		return nil, err
	}
	c.warnings = env.Warnings
	return &c, nil
}

// resolve applies the compatibility rules and checks the values against
// each other.
func (c *Config) resolve(env *settings.Env) error {
	if c.UseIstioEndpoint {
		if c.AdminAPI == "" {
			c.AdminAPI = "http://127.0.0.1:15000"
		}
		if c.IstioQuitAPI == "" {
			c.IstioQuitAPI = "http://127.0.0.1:15020"
		}
	}
	if c.PollInitial > c.PollMax {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_POLL_INITIAL", Value: os.Getenv("ENVOY_LIFECYCLE_POLL_INITIAL"), Valid: "at most ENVOY_LIFECYCLE_POLL_MAX (" + settings.FormatDuration(c.PollMax) + ")", Err: settings.ErrOutOfRange}
	}
	if !env.Set("WAIT_FOR_ENVOY_TIMEOUT") && !env.Set("QUIT_WITHOUT_ENVOY_TIMEOUT") {
		c.QuitWithoutEnvoyTimeout = lifecycle.DefaultQuitWithoutEnvoy
	}

	if err := c.resolveWaits(); err != nil {
		return err
	}
	if err := c.resolveDrain(); err != nil {
		return err
	}
	c.grace = defaultGrace
	if v, ok := env.Get("ENVOY_LIFECYCLE_GRACE_PERIOD"); ok {
		grace, err := settings.CheckDuration("ENVOY_LIFECYCLE_GRACE_PERIOD", v, 0)
		if err != nil {
			return err
		}
		c.grace, c.graceSet = grace, true
	}
	if !env.Set("ENVOY_LIFECYCLE_LOG_LEVEL") {
		// The peers' switches only silence the lifecycle lines; errors still show,
		// because a silent failure to stop the proxy is what hangs Jobs.
		if (c.PreflightLogging != nil && !*c.PreflightLogging) || (c.ScuttleLogging != nil && !*c.ScuttleLogging) {
			c.LogLevel = "error"
		}
	}
	return nil
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
	if c.DrainInclude != "" {
		// The default's server-side filter would hide what a custom
		// include selects; the include itself then filters.
		c.selector.Filter = ""
	}
	c.termSignals = map[os.Signal]bool{}
	for _, name := range c.TermSignals {
		n := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "SIG")
		if n == "" {
			continue // "TERM," is a list with a trailing comma, not an unknown signal
		}
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
	if c.DrainDeadline > 0 && c.drainDelay >= c.DrainDeadline {
		return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY"), Valid: "less than ENVOY_LIFECYCLE_DRAIN_DEADLINE (" + settings.FormatDuration(c.DrainDeadline) + "), which includes it", Err: settings.ErrOutOfRange}
	}
	return nil
}

// terminationLogPath is ENVOY_LIFECYCLE_TERMINATION_LOG read raw, for a
// configuration error: set but empty means none, unset the default.
func terminationLogPath() string {
	if v, ok := os.LookupEnv("ENVOY_LIFECYCLE_TERMINATION_LOG"); ok {
		return v
	}
	return termlog.Default
}

// budgetProblem says how the graceful termination can outlast the pod's
// grace period (doctor's budget check, failed), or "" when it fits or there
// is no drain. The start-up log warns with it.
func (c *Config) budgetProblem() string {
	if !c.Drain || c.AdminAPI == "" {
		return ""
	}
	if check := doctor.Budget(c.doctorSettings()); check.Level == doctor.Fail {
		return check.What
	}
	return ""
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
	// Buffered for a burst of every forwarded signal.
	sigs := make(chan os.Signal, wrapper.NumSignals)
	policy := wrapper.Catch(sigs)

	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		code := exitCode(err)
		// kubectl describe pod shows why the container keeps failing.
		lifecycle.WriteMessage(terminationLogPath(), lifecycle.Outcome{Code: code, Why: "bad configuration: " + err.Error()},
			newRootLogger(stderr, "warn", "text"))
		return code
	}
	log := cfg.NewLogger(stderr)
	if ign := policy.IgnoredAtStart(); len(ign) > 0 {
		log.Debug("signals ignored at start stay ignored", "signals", fmt.Sprint(ign))
	}
	logWarnings(log, cfg.warnings)
	if problem := cfg.budgetProblem(); problem != "" {
		log.Warn("shutdown budget exceeds the grace period; kubelet will SIGKILL mid-drain",
			"budget", cfg.ShutdownBudget(), "grace_period", cfg.grace, "problem", problem)
	}
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
	policy.Wait() // the readiness wait ends on any signal that would end the app
	out := r.Run()
	lifecycle.WriteMessage(cfg.TerminationLog, out, log)
	return out.Code
}

// processGroup is PROCESS_GROUP, or its default: an own group when the
// wrapper leads the terminal's session, where no job-control shell needs
// Ctrl-Z to stop the wrapper too, and everything the wrapper receives then
// came from kill(2), never from the terminal, so it is all forwarded.
func (c *Config) processGroup() bool {
	if c.ProcessGroup != nil {
		return *c.ProcessGroup
	}
	return wrapper.LeadsTerminal(os.Stdin)
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
		Setpgid:            c.processGroup(),
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
			Delay:          c.drainDelay,
			Quiet:          c.drainQuiet(log.Named("drain")),
			Arrivals:       c.arrivals(),
			SkipIdleDelay:  c.DrainSkipIdle,
			InboundOnly:    true,
			Period:         c.DrainPeriod,
			Deadline:       c.DrainDeadline,
			MinConnections: c.DrainMinConnections,
			Selector:       c.selector,
			Logger:         log.Named("drain"),
		}
	}
	if o.Admin != nil {
		o.Readiness = c.readinessConditions(o.Admin)
	}
	if c.IstioQuitAPI != "" {
		if o.Stop.Istio, err = envoy.New(c.IstioQuitAPI, envoy.Options{Timeout: c.QuitRequestTimeout, Logger: log.Named("istio")}); err != nil {
			return o, fmt.Errorf("ISTIO_QUIT_API: %w", err)
		}
	}
	return o, nil
}

// The wrap mode's two waits that watch Envoy instead of the clock: the
// adaptive drain delay (DRAIN_DELAY=auto) and the readiness conditions after
// LIVE (READY_*).

// resolveWaits reads DRAIN_DELAY (a duration or auto), checks the auto
// bounds against each other and reads the READY_* conditions. It runs
// before resolveDrain, which holds the fixed delay against the deadline.
func (c *Config) resolveWaits() error {
	v := strings.TrimSpace(c.DrainDelay)
	if strings.EqualFold(v, "auto") {
		c.drainAuto = true
	} else {
		d, err := settings.ParseDuration(v)
		if err != nil {
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY", Value: c.DrainDelay, Valid: "auto, or " + settings.ValidDuration, Err: err}
		}
		c.drainDelay = d
	}
	if c.drainAuto {
		max := c.drainDelayMax()
		switch {
		case c.DrainDeadline > 0 && max >= c.DrainDeadline:
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY_MAX", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY_MAX"),
				Valid: "less than ENVOY_LIFECYCLE_DRAIN_DEADLINE (" + settings.FormatDuration(c.DrainDeadline) + "), which includes it", Err: settings.ErrOutOfRange}
		case c.DrainDelayMin > max:
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY_MIN", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY_MIN"),
				Valid: "at most the auto delay's maximum (" + settings.FormatDuration(max) + ")", Err: settings.ErrOutOfRange}
		}
	}

	var names []string
	for _, n := range c.ReadyClusters {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if slices.Contains(names, n) {
			return &ConfigError{Name: "ENVOY_LIFECYCLE_READY_CLUSTERS", Value: os.Getenv("ENVOY_LIFECYCLE_READY_CLUSTERS"), Valid: "comma-separated cluster names, each once", Err: errors.New("duplicate " + n)}
		}
		names = append(names, n)
	}
	c.ReadyClusters = names
	return nil
}

// drainDelayMax is DRAIN_DELAY_MAX, or half of DRAIN_DEADLINE when it is 0:
// the listener drain keeps the other half. An unbounded drain
// (DRAIN_DEADLINE=0) still bounds the delay, at half the default deadline:
// the user chose to wait for connections, not for traffic to stop.
func (c *Config) drainDelayMax() time.Duration {
	switch {
	case c.DrainDelayMax > 0:
		return c.DrainDelayMax
	case c.DrainDeadline > 0:
		return c.DrainDeadline / 2
	}
	return lifecycle.DefaultDrainDeadline / 2
}

// drainQuiet is the adaptive delay, nil unless DRAIN_DELAY=auto. When the
// traffic counters cannot be read it falls back to the fixed default.
func (c *Config) drainQuiet(log hclog.Logger) *quit.Quiet {
	if !c.drainAuto {
		return nil
	}
	return &quit.Quiet{
		Window:   c.DrainQuiet,
		Min:      c.DrainDelayMin,
		Max:      c.drainDelayMax(),
		Fallback: lifecycle.DefaultDrainDelay,
		Logger:   log,
	}
}

// arrivals selects the counters of new inbound traffic with the same
// DRAIN_INCLUDE/DRAIN_EXCLUDE as the drain's count, on the side DRAIN_COUNT
// names; the other side keeps its default.
func (c *Config) arrivals() envoy.Arrivals {
	if c.DrainInclude == "" && c.DrainExclude == "" {
		return envoy.Arrivals{}
	}
	if c.DrainCount == "requests" {
		return envoy.Arrivals{Request: c.selector}
	}
	return envoy.Arrivals{Conn: c.selector}
}

// readinessConditions are the READY_* conditions, in a fixed order.
func (c *Config) readinessConditions(admin *envoy.Client) []readiness.Condition {
	var conds []readiness.Condition
	if len(c.ReadyClusters) > 0 {
		conds = append(conds, readiness.Condition{Name: "clusters " + strings.Join(c.ReadyClusters, ","),
			Check: readiness.ClustersServing(admin, c.ReadyClusters), Deadline: c.ReadyClustersTimeout, Fatal: c.ReadyClustersFatal})
	}
	if c.ReadyNoWarming {
		conds = append(conds, readiness.Condition{Name: "nothing warming",
			Check: readiness.NothingWarming(admin), Deadline: c.ReadyNoWarmingTimeout, Fatal: c.ReadyNoWarmingFatal})
	}
	if c.ReadyURL != "" {
		conds = append(conds, readiness.Condition{Name: "GET " + c.ReadyURL,
			Check: readiness.HTTPGet(c.ReadyURL, c.RequestTimeout), Deadline: c.ReadyURLTimeout, Fatal: c.ReadyURLFatal})
	}
	return conds
}
