package shutdownmgr

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// validDuration says what ParseDuration accepts, for error messages.
const validDuration = "seconds such as 5 or 2.5, or a duration such as 500ms or 1m"

// ParseDuration reads a duration the way the shutdown handler's query and
// marin3r's flags give it, as a number of seconds ("5", "2.5"), or as a Go
// duration ("500ms", "1m30s"). Negative, NaN and out-of-range values are
// errors.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return 0, errors.New("not a number of seconds")
		case f < 0:
			return 0, errors.New("negative")
		case f*float64(time.Second) > float64(math.MaxInt64):
			return 0, errors.New("too large")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("cannot parse")
	}
	if d < 0 {
		return 0, errors.New("negative")
	}
	return d, nil
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
	if _, ok := q["deadline"]; ok && p.Deadline <= 0 {
		return Params{}, &ParamError{Name: "deadline", Value: q.Get("deadline"), Reason: "must be greater than 0"}
	}
	return p, nil
}
