package settings

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"envoy-lifecycle/envoy"
)

// Env reads environment variables by the rules of this package. Warnings
// collects what was read leniently, for the caller to log once its logger
// exists: settings are read before the logger can be built.
type Env struct {
	// Lookup reads one variable instead of the process environment
	// (tests). nil: Load's variables as envconfig read them, and any
	// other by os.LookupEnv.
	Lookup   func(string) (string, bool)
	Warnings []Warning

	ignored  map[string]bool     // set, but read as unset by a peer's rule
	gathered map[string]rawValue // by envconfig, in Load
}

// Warning is a value read by a peer's rule, or a name that lost to another.
// One per variable.
type Warning struct {
	Name, Value string
	TakenAs     string // what the value was read as
	Why         string
}

// String is the warning as one line, for tools without a logger.
func (w Warning) String() string {
	return fmt.Sprintf("%s=%q taken as %s: %s", w.Name, w.Value, w.TakenAs, w.Why)
}

// Get returns a variable's value; an empty value is unset.
func (e *Env) Get(name string) (string, bool) {
	v, ok := e.lookup(name)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

func (e *Env) lookup(name string) (string, bool) {
	if e.Lookup != nil {
		return e.Lookup(name)
	}
	if r, ok := e.gathered[name]; ok {
		return r.s, r.set
	}
	return os.LookupEnv(name)
}

// Set reports whether name has a value that was not ignored: a peer's
// duration that did not parse counts as unset, as it did for the peer.
func (e *Env) Set(name string) bool {
	_, ok := e.Get(name)
	return ok && !e.ignored[name]
}

func (e *Env) ignore(name string) {
	if e.ignored == nil {
		e.ignored = map[string]bool{}
	}
	e.ignored[name] = true
}

// Warn records a warning about name, for readers outside this package.
func (e *Env) Warn(name, value, takenAs, why string) { e.warn(name, value, takenAs, why) }

func (e *Env) warn(name, value, takenAs, why string) {
	// A warning is logged: a URL's password must not reach the log.
	if strings.ContainsAny(value, "@?") {
		value = envoy.RedactAddress(value)
	}
	e.Warnings = append(e.Warnings, Warning{Name: name, Value: value, TakenAs: takenAs, Why: envoy.RedactText(why)})
}

// Duration reads one of our durations: def when unset; a value below min is
// refused.
func (e *Env) Duration(name string, def, min time.Duration) (time.Duration, error) {
	v, ok := e.Get(name)
	if !ok {
		return def, nil
	}
	return CheckDuration(name, v, min)
}

// CheckDuration parses a duration of at least min and names name in the
// error. Flags use it too.
func CheckDuration(name, v string, min time.Duration) (time.Duration, error) {
	d, err := ParseDuration(v)
	valid := ValidDuration
	switch {
	case min > 0:
		valid = "at least " + FormatDuration(min) + ": " + ValidDuration
	}
	if err != nil {
		return 0, &Error{Name: name, Value: v, Valid: valid, Err: err}
	}
	if d < min {
		return 0, &Error{Name: name, Value: v, Valid: valid, Err: ErrOutOfRange}
	}
	return d, nil
}

// Bool reads one of our booleans: def when unset.
func (e *Env) Bool(name string, def bool) (bool, error) {
	return read(e, name, def, ParseBool, ValidBool)
}

// Admin reads an admin address: def when unset (def may be "").
func (e *Env) Admin(name, def string) (string, error) {
	return read(e, name, def, ParseAdmin, ValidAdmin)
}

// LogFormat reads a log format: def when unset.
func (e *Env) LogFormat(name, def string) (string, error) {
	return read(e, name, def, ParseLogFormat, ValidLogFormat)
}

// LogLevel reads a log level: def when unset.
func (e *Env) LogLevel(name, def string) (string, error) {
	return read(e, name, def, ParseLogLevel, ValidLogLevel)
}

// read is every strict reader: def when unset, else parse or an *Error.
func read[T any](e *Env, name string, def T, parse func(string) (T, error), valid string) (T, error) {
	v, ok := e.Get(name)
	if !ok {
		return def, nil
	}
	x, err := parse(v)
	if err != nil {
		var zero T
		return zero, &Error{Name: name, Value: v, Valid: valid, Err: err}
	}
	return x, nil
}

// Int reads a whole number from lo to hi: def when unset.
func (e *Env) Int(name string, def, lo, hi int64) (int64, error) {
	return read(e, name, def, func(s string) (int64, error) { return ParseInt(s, lo, hi) }, ValidInt(lo, hi))
}

// Pick returns the first of names that is set, and warns about each later
// one that is set too and loses: the prefixed name comes first, so it wins
// over a peer's bare name that another container may share (envFrom).
func (e *Env) Pick(names ...string) (name, value string, ok bool) {
	for _, n := range names {
		v, set := e.Get(n)
		if !set {
			continue
		}
		if !ok {
			name, value, ok = n, v, true
			continue
		}
		e.warn(n, v, "unset", name+" is set too and wins")
	}
	return name, value, ok
}

// FormatDuration writes d the way help and messages show durations: Go's
// form without the trailing zero units (10m, not 10m0s).
func FormatDuration(d time.Duration) string {
	s := d.String()
	for _, z := range []struct{ long, short string }{{"h0m0s", "h"}, {"m0s", "m"}} {
		if len(s) > len(z.long) && s[len(s)-len(z.long):] == z.long {
			return s[:len(s)-len(z.long)] + z.short
		}
	}
	return s
}

// Seconds is d as seconds for logs, rounded to the microsecond. Every
// duration in our logs is a key ending in _s with this value, in text and
// JSON alike: `log.Info("drained", "took_s", settings.Seconds(d))`.
func Seconds(d time.Duration) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(d.Seconds(), 'f', 6, 64), 64)
	return f
}
