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
	"envoy-lifecycle/lifecycle"
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
		fmt.Fprintf(stderr, "envoy-lifecycle doctor: unexpected argument %q (doctor takes none; it reads the same environment as the wrap mode)\n", args[0])
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
	fmt.Fprintf(stdout, "%d problems, %d warnings\n", fails, warns)
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
			out = append(out, versionChecks(info.Version, cfg.Drain)...)
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

	budget := cfg.ShutdownBudget()
	source := "ENVOY_LIFECYCLE_GRACE_PERIOD"
	if cfg.GracePeriod == "" {
		source = "Kubernetes' default; set ENVOY_LIFECYCLE_GRACE_PERIOD to check yours"
	}
	switch {
	case !cfg.Drain || admin == nil:
		add("ok", "no graceful drain: nothing to fit in the grace period")
	case budget == 0:
		add("FAIL", "no shutdown budget: ENVOY_LIFECYCLE_DRAIN_DEADLINE or ENVOY_LIFECYCLE_STOP_TIMEOUT is 0, so a termination can outlast the grace period %v (%s) and kubelet will SIGKILL mid-drain", cfg.grace, source)
	case budget > cfg.grace:
		add("FAIL", "shutdown budget %v (DRAIN_DEADLINE %v + STOP_TIMEOUT %v + %v) exceeds the grace period %v (%s): kubelet will SIGKILL mid-drain", budget, cfg.DrainDeadline, cfg.StopTimeout, lifecycle.QuitBudget, cfg.grace, source)
	default:
		add("ok", "shutdown budget %v fits the grace period %v (%s)", budget, cfg.grace, source)
	}
	return out
}

// versionChecks reports what the admin API of that Envoy supports.
func versionChecks(version string, drain bool) []check {
	v, ok := envoy.ParseVersion(version)
	if !ok {
		return []check{{"warn", fmt.Sprintf("cannot read a release from envoy version %q; feature checks skipped", version)}}
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
	c := []check{{"ok", fmt.Sprintf("envoy %v: drain_listeners %s, graceful drain %s, skip_exit %s, GET on a POST-only endpoint answers %s",
		v, yes(f.DrainListeners), yes(f.GracefulDrain), yes(f.SkipExit), method)}}
	if drain && !f.DrainListeners {
		c = append(c, check{"warn", fmt.Sprintf("envoy %v has no /drain_listeners (1.12): the drain only fails health checks and waits for connections", v)})
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
