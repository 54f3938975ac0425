// Package doctor checks a wrap mode configuration against the proxy it
// names, without changing anything: is the admin reachable and LIVE, what
// does that Envoy release support, can the proxy be told to quit, does the
// shutdown budget fit the grace period.
package doctor

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
	"envoy-lifecycle/quit"
	"envoy-lifecycle/readiness"
)

// Settings are what the checks read: the wrap mode's, resolved.
type Settings struct {
	AdminAPI, IstioQuitAPI string
	GenericQuitEndpoints   []string
	RequestTimeout         time.Duration
	// Drain is ENVOY_LIFECYCLE_DRAIN; Selector picks the connection stats.
	Drain    bool
	Selector envoy.Selector
	// DrainDeadline and StopTimeout size the shutdown budget.
	DrainDeadline, StopTimeout time.Duration
	// Grace is the pod's grace period; GraceSet says the user gave it
	// (otherwise it is Kubernetes' default).
	Grace    time.Duration
	GraceSet bool
	// AutoDelay is the adaptive drain delay (DRAIN_DELAY=auto), nil when
	// the delay is fixed; Arrivals picks the counters it watches.
	AutoDelay *quit.Quiet
	Arrivals  envoy.Arrivals
	// Readiness builds the READY_* conditions on doctor's admin client
	// (waits.go); nil means none.
	Readiness func(*envoy.Client) []readiness.Condition
	// Warnings are settings read by a peer's rule or outvoted (one line
	// each), reported as warnings.
	Warnings []string
}

// Level is how bad a check's finding is.
type Level int

// The levels, in the order of their badness.
const (
	Info Level = iota - 1 // inferred, not observed: not a finding
	OK                    // observed
	Warn
	Fail // something would break at run time
)

func (l Level) String() string {
	switch l {
	case Info:
		return "info"
	case OK:
		return "ok"
	case Warn:
		return "warn"
	}
	return "FAIL"
}

// Check is one line of the report.
type Check struct {
	Level Level
	What  string
}

// Print writes the report and returns how many checks failed. Every URL in
// it goes through envoy.RedactText: the report is pasted into tickets.
func Print(w io.Writer, checks []Check) (fails int) {
	warns := 0
	fmt.Fprintln(w, "envoy-lifecycle doctor")
	for _, c := range checks {
		fmt.Fprintf(w, "  %-4s  %s\n", c.Level, envoy.RedactText(c.What))
		switch c.Level {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	fmt.Fprintf(w, "%s, %s\n", count(fails, "problem"), count(warns, "warning"))
	return fails
}

// count writes n and noun, plural unless n is 1: "1 warning", "0 problems".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Run runs every check. Each request is bounded by s.RequestTimeout and by
// ctx; nothing is changed on the proxy.
func Run(ctx context.Context, s Settings) []Check {
	cfg := &s
	out := []Check{{OK, "configuration is valid"}}
	add := func(level Level, format string, a ...any) { out = append(out, Check{level, fmt.Sprintf(format, a...)}) }
	for _, w := range cfg.Warnings {
		add(Warn, "%s", w)
	}

	var admin *envoy.Client
	if cfg.AdminAPI == "" {
		add(Warn, "ENVOY_ADMIN_API is not set: the app runs at once and no Envoy is drained or stopped (local development)")
	} else {
		var err error
		admin, err = envoy.New(cfg.AdminAPI, envoy.Options{Timeout: cfg.RequestTimeout, Logger: hclog.NewNullLogger()})
		if err != nil {
			add(Fail, "ENVOY_ADMIN_API: %v", err)
			admin = nil
		}
	}
	if admin != nil {
		base := admin.Base().String()
		var sockErr error
		if admin.Base().Scheme == "unix" {
			sockErr = CheckSocket(admin.Base().Path)
		}
		info, err := admin.ServerInfo(ctx)
		switch {
		case err != nil && sockErr != nil:
			add(Fail, "%v", sockErr)
		case err != nil:
			add(Fail, "envoy admin %s is not reachable: %v", base, err)
		case info.State != envoy.StateLive:
			add(Warn, "envoy admin %s answers, state %s (not LIVE yet); version %s", base, info.State, info.Version)
		default:
			add(OK, "envoy admin %s answers, state LIVE, version %s", base, info.Version)
		}
		if err == nil {
			out = append(out, featureChecks(ctx, admin, info.Version, cfg.Drain)...)
		}
		if envoy.IsLocal(admin.Base()) {
			add(OK, "admin address is local: Envoy can be told to quit")
		} else if cfg.IstioQuitAPI == "" && len(cfg.GenericQuitEndpoints) == 0 {
			add(Fail, "admin address %s is not local (loopback or unix socket): Envoy will not be told to quit, and a Job would never end", base)
		} else {
			add(Warn, "admin address %s is not local: Envoy itself will not be told to quit", base)
		}
		if err == nil && cfg.Drain {
			n, matched, serr := admin.ActiveConnections(ctx, cfg.Selector)
			switch {
			case serr != nil:
				add(Warn, "cannot read connection stats: %v", serr)
			case matched == 0:
				add(Warn, "no stat matches %s: the drain will not wait for connections", cfg.Selector.Include)
			default:
				add(OK, "connection stat found: %d stats match, %d open now", matched, n)
			}
		}
	}
	if admin != nil {
		out = append(out, waitChecks(ctx, cfg, admin)...)
	}
	if cfg.IstioQuitAPI != "" {
		out = append(out, istioCheck(ctx, cfg))
	}

	if !cfg.Drain || admin == nil {
		add(OK, "no graceful drain: nothing to fit in the grace period")
	} else {
		out = append(out, Budget(*cfg))
	}
	return out
}

// Budget checks that the shutdown budget fits the grace period: Fail when
// it does not (a termination can then be SIGKILLed mid-drain), OK when it
// does. The wrap mode logs the Fail at start too.
func Budget(s Settings) Check {
	budget := lifecycle.ShutdownBudget(s.DrainDeadline, s.StopTimeout)
	source := "ENVOY_LIFECYCLE_GRACE_PERIOD"
	if !s.GraceSet {
		source = "Kubernetes' default; set ENVOY_LIFECYCLE_GRACE_PERIOD to check yours"
	}
	switch {
	case budget == 0:
		return Check{Fail, fmt.Sprintf("no shutdown budget: ENVOY_LIFECYCLE_DRAIN_DEADLINE or ENVOY_LIFECYCLE_STOP_TIMEOUT is 0, so a termination can outlast the grace period %v (%s) and kubelet will SIGKILL mid-drain", s.Grace, source)}
	case budget > s.Grace:
		return Check{Fail, fmt.Sprintf("shutdown budget %v (DRAIN_DEADLINE %v + STOP_TIMEOUT %v + %v) exceeds the grace period %v (%s): kubelet will SIGKILL mid-drain", budget, s.DrainDeadline, s.StopTimeout, lifecycle.QuitBudget, s.Grace, source)}
	}
	return Check{OK, fmt.Sprintf("shutdown budget %v fits the grace period %v (%s)", budget, s.Grace, source)}
}

// featureChecks reports what this Envoy's admin API supports. Only what
// /help lists is observed (OK); the rest is inferred from the version
// string and says so (Info): probing a POST-only endpoint with GET would
// run it on releases that do not refuse GET.
func featureChecks(ctx context.Context, admin *envoy.Client, version string, drain bool) []Check {
	var c []Check
	eps, err := admin.Endpoints(ctx)
	switch _, listed := eps["/drain_listeners"]; {
	case err != nil:
		c = append(c, Check{Warn, fmt.Sprintf("cannot list the admin endpoints: %v; /drain_listeners not checked", err)})
	case listed:
		c = append(c, Check{OK, "/help lists /drain_listeners: listeners can be drained"})
	case drain:
		c = append(c, Check{Warn, "/help does not list /drain_listeners: the drain only fails health checks and waits for connections"})
	}
	v, ok := envoy.ParseVersion(version)
	if !ok {
		return append(c, Check{Warn, fmt.Sprintf("cannot read a release from envoy version %q; nothing inferred", version)})
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
	c = append(c, Check{Info, fmt.Sprintf("inferred from version %v, not checked: drain_listeners %s, graceful drain %s, skip_exit %s, GET on a POST-only endpoint answers %s",
		v, yes(f.DrainListeners), yes(f.GracefulDrain), yes(f.SkipExit), method)})
	if _, listed := eps["/drain_listeners"]; err == nil && listed != f.DrainListeners {
		c = append(c, Check{Warn, fmt.Sprintf("/help and version %v disagree on /drain_listeners; /help is what this Envoy serves", v)})
	}
	return c
}

// istioCheck tells whether pilot-agent's quit API is there, without quitting
// it: a GET on /quitquitquit answers 405 from a POST-only pilot-agent.
func istioCheck(ctx context.Context, cfg *Settings) Check {
	u, err := envoy.ParseAdminURL(cfg.IstioQuitAPI)
	if err != nil {
		return Check{Fail, fmt.Sprintf("ISTIO_QUIT_API: %v", err)}
	}
	if !envoy.IsLocal(u) {
		return Check{Fail, fmt.Sprintf("ISTIO_QUIT_API %s is not local: pilot-agent only takes quit requests from localhost", cfg.IstioQuitAPI)}
	}
	c, err := envoy.New(cfg.IstioQuitAPI, envoy.Options{Timeout: cfg.RequestTimeout, Logger: hclog.NewNullLogger()})
	if err != nil {
		return Check{Fail, fmt.Sprintf("ISTIO_QUIT_API: %v", err)}
	}
	code, err := c.Get(ctx, "/quitquitquit")
	var se *envoy.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusMethodNotAllowed:
		return Check{OK, fmt.Sprintf("istio quit api %s answers (GET /quitquitquit: 405, POST only, as pilot-agent)", cfg.IstioQuitAPI)}
	case err != nil:
		return Check{Fail, fmt.Sprintf("istio quit api %s is not reachable: %v (status port 0 in the pod's annotations disables it)", cfg.IstioQuitAPI, err)}
	default:
		return Check{Warn, fmt.Sprintf("istio quit api %s answered GET /quitquitquit with %d; pilot-agent would answer 405", cfg.IstioQuitAPI, code)}
	}
}
