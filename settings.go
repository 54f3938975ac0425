package main

// Settings shared by every mode's command line: the error for a bad setting,
// the value parsers, the root logger, and the tables printed by --help.

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/cli"
	"envoy-lifecycle/envoy"
	"envoy-lifecycle/settings"
)

// ConfigError is a bad setting: it names the variable or flag, echoes the
// value and says what is valid. Every mode reports settings.Error.
type ConfigError = settings.Error

// newRootLogger is every mode's root logger. level is an already validated
// hclog level name or "off"; format is "json" or "text".
func newRootLogger(w io.Writer, level, format string) hclog.Logger {
	l := hclog.LevelFromString(level)
	if level == "off" {
		l = hclog.Off
	}
	// Every duration is logged as seconds under a _s key (README, "Logs").
	return settings.SecondsLogger(hclog.New(&hclog.LoggerOptions{
		Name:       "envoy-lifecycle",
		Level:      l,
		Output:     w,
		JSONFormat: format == "json",
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	}))
}

// logWarnings logs, once at start, every value read leniently (a peer's
// rule) or outvoted by another name of the same setting.
func logWarnings(log hclog.Logger, ws []settings.Warning) {
	for _, w := range ws {
		log.Warn("setting not taken as written", "variable", w.Name, "value", w.Value, "taken_as", w.TakenAs, "why", w.Why)
	}
}

// wrapHelp wraps help text at cli.Width columns.
func wrapHelp(s string) string { return cli.Wrap(s, cli.Width) }

// printEnvUsage writes every variable of defaults (a pointer to a tagged
// struct holding the preset defaults), from its tags and values so it
// cannot drift, wrapped at cli.Width.
func printEnvUsage(w io.Writer, defaults any) {
	settings.WriteUsage(w, settings.Vars(defaults))
}

// usageError is a bad command line that is not one setting (an unknown flag,
// a stray argument).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// What the shared parsers accept, for help and error messages.
const (
	validDuration = settings.ValidDuration
	validBool     = settings.ValidBool
)

func durationSetter(dst *time.Duration) func(string) error {
	return func(s string) error {
		d, err := settings.ParseDuration(s)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
}

func boolSetter(dst *bool) func(string) error {
	return func(s string) error {
		b, err := settings.ParseBool(s)
		if err != nil {
			return err
		}
		*dst = b
		return nil
	}
}

func intSetter(dst *int, lo, hi int) func(string) error {
	return func(s string) error {
		n, err := settings.ParseInt(s, int64(lo), int64(hi))
		if err != nil {
			return err
		}
		*dst = int(n)
		return nil
	}
}

func stringSetter(dst *string) func(string) error {
	return func(s string) error { *dst = s; return nil }
}

func oneOf(dst *string, valid ...string) func(string) error {
	return func(s string) error {
		s = strings.ToLower(strings.TrimSpace(s))
		for _, v := range valid {
			if s == v {
				*dst = s
				return nil
			}
		}
		return settings.ErrUnknown
	}
}

// shown is v as an error may echo it: a secret is replaced, a URL's
// secrets are.
func (s *mgrSetting) shown(v string) string {
	switch {
	case s.secret:
		return fmt.Sprintf("(%d characters, not shown)", len(v))
	case s.isURL:
		return envoy.RedactAddress(v)
	}
	return v
}

// positive wraps a duration setter: zero is refused too.
func positive(set func(string) error, dst *time.Duration) func(string) error {
	return func(s string) error {
		if err := set(s); err != nil {
			return err
		}
		if *dst == 0 {
			return settings.ErrOutOfRange
		}
		return nil
	}
}

func regexpSetter(dst **regexp.Regexp) func(string) error {
	return func(s string) error {
		if s == "" {
			*dst = nil
			return nil
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return errors.New("cannot compile")
		}
		*dst = re
		return nil
	}
}

// settingFlag adapts a setting to flag.Value; a bad value is kept in *bad so
// the caller can print our one-line message instead of the flag package's.
// A setting with several names records the flag in *sources.
type settingFlag struct {
	s       *mgrSetting
	name    string
	bad     **ConfigError
	sources *[]string
}

func (f settingFlag) String() string { return "" }

func (f settingFlag) IsBoolFlag() bool { return f.s.isBool }

func (f settingFlag) Set(v string) error {
	if err := f.s.set(v); err != nil {
		ce := &ConfigError{Name: "--" + f.name, Value: f.s.shown(v), Valid: f.s.valid, Err: err}
		*f.bad = ce
		return ce
	}
	if len(f.s.env) > 1 {
		*f.sources = append(*f.sources, f.s.flags[0]+"=--"+f.name)
	}
	return nil
}
