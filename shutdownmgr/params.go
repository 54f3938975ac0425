package shutdownmgr

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"envoy-lifecycle/settings"
)

// Params are the settings one request may override, with the shutdown
// handler's query parameter names: ?delay=&period=&deadline=.
type Params struct {
	// Delay is waited after failing health checks (quit.Drain.Delay).
	Delay time.Duration
	// Period is the interval between connection polls; it must be > 0.
	Period time.Duration
	// Deadline bounds the drain and the caller's wait, counted from the
	// request. Zero means no deadline (only a server default may be zero).
	Deadline time.Duration
	// Auto replaces Delay with the adaptive one (?delay=auto; quiet.go):
	// Delay is then only its fallback when the stats are missing.
	Auto bool
}

// ParamError is a bad query parameter: its message is the one-line reason
// answered with 400.
type ParamError struct {
	Name, Value, Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Name, e.Value, e.Reason)
}

// Bounds of every duration this package reads.
const (
	// MaxDuration is the longest duration ParseDuration accepts: a day is
	// far beyond any termination grace period, so anything longer is a
	// mistake (or an attempt to hold the manager past SIGTERM).
	MaxDuration = settings.MaxDuration
	// MinPeriod is the shortest poll period: each poll is a /stats request
	// to Envoy's admin, and ?period=1ns made tens of thousands a second.
	MinPeriod = 10 * time.Millisecond
	// MaxQueryDeadline is the longest ?deadline= a request may ask for when
	// the server's own deadline is shorter: one hour, the order of a long
	// termination grace period.
	MaxQueryDeadline = time.Hour
)

// validDuration says what ParseDuration accepts, for error messages.
const validDuration = "seconds such as 5 or 2.5, or a duration such as 500ms or 1m, from 0 to 24h"

// ParseDuration reads a query duration by the rule every setting of every
// mode follows (settings.ParseDuration): seconds ("5", "2.5") or a Go
// duration ("500ms", "1m30s"), from 0 to MaxDuration, so nothing can
// overflow.
func ParseDuration(s string) (time.Duration, error) {
	return settings.ParseDuration(s)
}

// ParseParams reads delay, period and deadline from q over the defaults
// def, for a request that starts or joins a drain (/shutdown, /drain).
// startDelay (the server's start-drain delay) counts against the deadline
// too. A parameter given twice, a value ParseDuration refuses, a zero
// period, a zero deadline and a deadline shorter than
// startDelay+delay+period are errors, reported as *ParamError.
func ParseParams(q url.Values, def Params, startDelay time.Duration) (Params, error) {
	p, err := parseWaitParams(q, def)
	if err != nil {
		return Params{}, err
	}
	_, deadlineSet := q["deadline"]
	if deadlineSet || p.Deadline > 0 {
		if need := startDelay + p.Delay + p.Period; p.Deadline < need {
			what := "delay+period"
			if startDelay > 0 {
				what = "start-drain-delay+delay+period"
			}
			value, whose := q.Get("deadline"), ""
			if !deadlineSet {
				value, whose = p.Deadline.String(), "the default "
			}
			return Params{}, &ParamError{Name: "deadline", Value: value,
				Reason: fmt.Sprintf("%sis shorter than %s (%s)", whose, what, need)}
		}
	}
	return p, nil
}

// parseWaitParams reads the query of a request that only waits
// (/waitforshutdown, the ready-file waits): it checks delay and period as
// ParseParams does, so a bad query is a 400 on every path, but it does not
// hold the deadline against them, since such a request uses neither. An
// explicit deadline must be greater than 0 (zero would mean none).
func parseWaitParams(q url.Values, def Params) (Params, error) {
	p := def
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"delay", &p.Delay}, {"period", &p.Period}, {"deadline", &p.Deadline}} {
		vs, ok := q[f.name]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return Params{}, &ParamError{Name: f.name, Value: strings.Join(vs, ","), Reason: "given more than once"}
		}
		if f.name == "delay" {
			p.Auto = strings.EqualFold(strings.TrimSpace(vs[0]), "auto")
			if p.Auto {
				continue
			}
		}
		d, err := ParseDuration(vs[0])
		if err != nil {
			return Params{}, &ParamError{Name: f.name, Value: vs[0], Reason: err.Error() + " (valid: " + validFor(f.name) + ")"}
		}
		*f.dst = d
	}
	if p.Period <= 0 {
		return Params{}, &ParamError{Name: "period", Value: q.Get("period"), Reason: "must be greater than 0"}
	}
	if _, ok := q["period"]; ok && p.Period < MinPeriod {
		return Params{}, &ParamError{Name: "period", Value: q.Get("period"), Reason: fmt.Sprintf("below the minimum %s", MinPeriod)}
	}
	if _, ok := q["deadline"]; ok {
		if p.Deadline <= 0 {
			return Params{}, &ParamError{Name: "deadline", Value: q.Get("deadline"), Reason: "must be greater than 0"}
		}
		// A request may not outlive the server's own bound by much: a huge
		// deadline would hold the manager long past SIGTERM.
		if limit := max(def.Deadline, MaxQueryDeadline); p.Deadline > limit {
			return Params{}, &ParamError{Name: "deadline", Value: q.Get("deadline"), Reason: fmt.Sprintf("above the limit %s (valid: up to the larger of --deadline and %s)", limit, MaxQueryDeadline)}
		}
	}
	if _, ok := q["delay"]; ok && p.Delay > max(def.Deadline, MaxQueryDeadline) {
		return Params{}, &ParamError{Name: "delay", Value: q.Get("delay"), Reason: fmt.Sprintf("above the limit %s", max(def.Deadline, MaxQueryDeadline))}
	}
	return p, nil
}
