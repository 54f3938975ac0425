package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/settings"
)

// check is one line of doctor's report.
type check struct {
	level string // "ok", "warn" or "FAIL"
	what  string
}

// runDoctor resolves the configuration as the wrap mode would, checks the
// environment and prints a short report. It exits 0 when nothing would
// break, 1 when something would, and 64 on a bad configuration.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprint(stdout, wrapHelp(`Usage: envoy-lifecycle doctor

Resolves the wrap mode's configuration from the environment, as the wrap mode would, asks the proxy what it serves (GET /server_info, /help, /stats; nothing that changes its state) and prints a report: "ok" for what it observed, "info" for what it inferred, "warn" and "FAIL" for problems. Exit codes: 0 nothing would break, 1 something would, 64 bad configuration. Run it with the app container's environment, e.g. kubectl exec POD -c app -- envoy-lifecycle doctor.
`))
			return 0
		}
		fmt.Fprintf(stderr, "envoy-lifecycle doctor: unexpected argument %q (valid: none, or --help; doctor reads the same environment as the wrap mode)\n", args[0])
		return exitUsage
	}
	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitCode(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	checks := diagnose(ctx, cfg)
	fails, warns := 0, 0
	fmt.Fprintln(stdout, "envoy-lifecycle doctor")
	for _, c := range checks {
		fmt.Fprintf(stdout, "  %-4s  %s\n", c.level, c.what)
		switch c.level {
		case "FAIL":
			fails++
		case "warn":
			warns++
		}
	}
	fmt.Fprintf(stdout, "%s, %s\n", count(fails, "problem"), count(warns, "warning"))
	if fails > 0 {
		return exitProblems
	}
	return 0
}

// diagnose runs every check. Each request is bounded by the admin request
// timeout and by ctx.
func diagnose(ctx context.Context, cfg *Config) []check {
	out := []check{{"ok", "configuration is valid"}}
	add := func(level, format string, a ...any) { out = append(out, check{level, fmt.Sprintf(format, a...)}) }
	for _, w := range cfg.warnings {
		add("warn", "%s", w.String())
	}

	var admin *envoy.Client
	if cfg.AdminAPI == "" {
		add("warn", "ENVOY_ADMIN_API is not set: the app runs at once and no Envoy is drained or stopped (local development)")
	} else {
		var err error
		admin, err = envoy.New(cfg.AdminAPI, envoy.Options{Timeout: cfg.RequestTimeout, Logger: hclog.NewNullLogger()})
		if err != nil {
			add("FAIL", "ENVOY_ADMIN_API: %v", err)
			admin = nil
		}
	}
	if admin != nil {
		base := admin.Base().String()
		info, err := admin.ServerInfo(ctx)
		switch {
		case err != nil:
			add("FAIL", "envoy admin %s is not reachable: %v", base, err)
		case info.State != envoy.StateLive:
			add("warn", "envoy admin %s answers, state %s (not LIVE yet); version %s", base, info.State, info.Version)
		default:
			add("ok", "envoy admin %s answers, state LIVE, version %s", base, info.Version)
		}
		if err == nil {
			out = append(out, featureChecks(ctx, admin, info.Version, cfg.Drain)...)
		}
		if envoy.IsLocal(admin.Base()) {
			add("ok", "admin address is local: Envoy can be told to quit")
		} else if cfg.IstioQuitAPI == "" && len(cfg.GenericQuitEndpoints) == 0 {
			add("FAIL", "admin address %s is not local (loopback or unix socket): Envoy will not be told to quit, and a Job would never end", base)
		} else {
			add("warn", "admin address %s is not local: Envoy itself will not be told to quit", base)
		}
		if err == nil && cfg.Drain {
			n, matched, serr := admin.ActiveConnections(ctx, cfg.selector)
			switch {
			case serr != nil:
				add("warn", "cannot read connection stats: %v", serr)
			case matched == 0:
				add("warn", "no stat matches %s: the drain will not wait for connections", cfg.selector.Include)
			default:
				add("ok", "connection stat found: %d stats match, %d open now", matched, n)
			}
		}
	}
	if cfg.IstioQuitAPI != "" {
		out = append(out, istioCheck(ctx, cfg))
	}

	switch problem := cfg.budgetProblem(); {
	case !cfg.Drain || admin == nil:
		add("ok", "no graceful drain: nothing to fit in the grace period")
	case problem != "":
		add("FAIL", "%s: kubelet will SIGKILL mid-drain", problem)
	default:
		source := "ENVOY_LIFECYCLE_GRACE_PERIOD"
		if !cfg.graceSet {
			source = "Kubernetes' default; set ENVOY_LIFECYCLE_GRACE_PERIOD to check yours"
		}
		add("ok", "shutdown budget %s fits the grace period %s (%s)", settings.FormatDuration(cfg.ShutdownBudget()), settings.FormatDuration(cfg.grace), source)
	}
	return out
}

// featureChecks reports what this Envoy's admin API supports. Only what
// /help lists is observed ("ok"); the rest is inferred from the version
// string and says so ("info"): probing a POST-only endpoint with GET would
// run it on releases that do not refuse GET.
func featureChecks(ctx context.Context, admin *envoy.Client, version string, drain bool) []check {
	var c []check
	eps, err := admin.Endpoints(ctx)
	switch _, listed := eps["/drain_listeners"]; {
	case err != nil:
		c = append(c, check{"warn", fmt.Sprintf("cannot list the admin endpoints: %v; /drain_listeners not checked", err)})
	case listed:
		c = append(c, check{"ok", "/help lists /drain_listeners: listeners can be drained"})
	case drain:
		c = append(c, check{"warn", "/help does not list /drain_listeners: the drain only fails health checks and waits for connections"})
	}
	v, ok := envoy.ParseVersion(version)
	if !ok {
		return append(c, check{"warn", fmt.Sprintf("cannot read a release from envoy version %q; nothing inferred", version)})
	}
	f := envoy.FeaturesOf(v)
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	method := "405"
	if !f.MethodNotAllowed {
		method = "400"
	}
	c = append(c, check{"info", fmt.Sprintf("inferred from version %v, not checked: drain_listeners %s, graceful drain %s, skip_exit %s, GET on a POST-only endpoint answers %s",
		v, yes(f.DrainListeners), yes(f.GracefulDrain), yes(f.SkipExit), method)})
	if _, listed := eps["/drain_listeners"]; err == nil && listed != f.DrainListeners {
		c = append(c, check{"warn", fmt.Sprintf("/help and version %v disagree on /drain_listeners; /help is what this Envoy serves", v)})
	}
	return c
}

// istioCheck tells whether pilot-agent's quit API is there, without quitting
// it: a GET on /quitquitquit answers 405 from a POST-only pilot-agent.
func istioCheck(ctx context.Context, cfg *Config) check {
	u, err := envoy.ParseAdminURL(cfg.IstioQuitAPI)
	if err != nil {
		return check{"FAIL", fmt.Sprintf("ISTIO_QUIT_API: %v", err)}
	}
	if !envoy.IsLocal(u) {
		return check{"FAIL", fmt.Sprintf("ISTIO_QUIT_API %s is not local: pilot-agent only takes quit requests from localhost", cfg.IstioQuitAPI)}
	}
	c, err := envoy.New(cfg.IstioQuitAPI, envoy.Options{Timeout: cfg.RequestTimeout, Logger: hclog.NewNullLogger()})
	if err != nil {
		return check{"FAIL", fmt.Sprintf("ISTIO_QUIT_API: %v", err)}
	}
	code, err := c.Get(ctx, "/quitquitquit")
	var se *envoy.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusMethodNotAllowed:
		return check{"ok", fmt.Sprintf("istio quit api %s answers (GET /quitquitquit: 405, POST only, as pilot-agent)", cfg.IstioQuitAPI)}
	case err != nil:
		return check{"FAIL", fmt.Sprintf("istio quit api %s is not reachable: %v (status port 0 in the pod's annotations disables it)", cfg.IstioQuitAPI, err)}
	default:
		return check{"warn", fmt.Sprintf("istio quit api %s answered GET /quitquitquit with %d; pilot-agent would answer 405", cfg.IstioQuitAPI, code)}
	}
}

// count writes n and noun, plural unless n is 1: "1 warning", "0 problems".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
