package main

// Settings shared by every mode's command line: the error for a bad setting,
// the value parsers, the root logger, and the tables printed by --help.

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/shutdownmgr"
)

// ConfigError is a bad setting: it names the variable, echoes the value and
// says what is valid.
type ConfigError struct {
	Name, Value, Valid string
	Err                error
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("%s=%q: ", e.Name, e.Value)
	if e.Err != nil {
		msg += e.Err.Error() + " "
	}
	return msg + "(valid: " + e.Valid + ")"
}

func (e *ConfigError) Unwrap() error { return e.Err }

func validFor(typeName string) string {
	switch typeName {
	case "time.Duration", "Duration":
		return "a duration such as 500ms, 30s or 2m"
	case "bool", "*bool":
		return "true or false"
	case "int", "uint64":
		return "a whole number of 0 or more"
	}
	return typeName
}

// addressReason is the reason of an envoy.ParseAdminURL error, read from its
// type: the ConfigError already names the variable, echoes the value and
// lists what is valid.
func addressReason(err error) string {
	var ae *envoy.AddressError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return err.Error()
}

func checkHTTPURL(s string) error {
	if !strings.Contains(s, "://") {
		// url.Parse would read "user:password@host" as scheme "user".
		return errors.New("missing scheme")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("malformed URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}

// newRootLogger is every mode's root logger. level is an already validated
// hclog level name or "off"; format is "json" or "text".
func newRootLogger(w io.Writer, level, format string) hclog.Logger {
	l := hclog.LevelFromString(level)
	if level == "off" {
		l = hclog.Off
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "envoy-lifecycle",
		Level:      l,
		Output:     w,
		JSONFormat: format == "json",
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
}

// envVar is one row of an environment table.
type envVar struct{ name, def, from, desc string }

// envVars lists the variables of defaults (a pointer to a tagged struct):
// name, origin and meaning from the tags; the default from the default tag,
// or else the field's preset value, so a default lives in one place.
func envVars(defaults any) []envVar {
	v := reflect.ValueOf(defaults).Elem()
	t := v.Type()
	var out []envVar
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("envconfig") == "" {
			continue
		}
		e := envVar{name: f.Tag.Get("envconfig"), def: f.Tag.Get("default"), from: f.Tag.Get("from"), desc: f.Tag.Get("desc")}
		if fv := v.Field(i); e.def == "" && !fv.IsZero() {
			switch x := fv.Interface().(type) {
			case time.Duration:
				e.def = fmtDuration(x)
			default:
				e.def = fmt.Sprint(x)
			}
		}
		if e.def == "" {
			e.def = "-"
		}
		if e.from == "" {
			e.from = "-"
		}
		out = append(out, e)
	}
	return out
}

// fmtDuration writes d as a person would: 10m, not 10m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// printEnvUsage writes the table of envVars(defaults).
func printEnvUsage(w io.Writer, defaults any) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tFROM\tMEANING")
	for _, e := range envVars(defaults) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.name, e.def, e.from, e.desc)
	}
	tw.Flush()
}

// usageError is a bad command line that is not one setting (an unknown flag,
// a stray argument).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// What ParseDuration and the others accept, for error messages.
const (
	validDuration = "seconds such as 5 or 2.5, or a duration such as 500ms or 1m, up to 24h"
	validBool     = "true or false (also yes/no, on/off, 1/0)"
)

func durationSetter(dst *time.Duration) func(string) error {
	return func(s string) error {
		d, err := shutdownmgr.ParseDuration(s)
		if err != nil {
			return err
		}
		*dst = d
		return nil
	}
}

func boolSetter(dst *bool) func(string) error {
	return func(s string) error {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "1", "t", "true", "yes", "y", "on":
			*dst = true
		case "0", "f", "false", "no", "n", "off":
			*dst = false
		default:
			return errors.New("cannot parse")
		}
		return nil
	}
}

func intSetter(dst *int, lo, hi int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return errors.New("cannot parse")
		}
		if n < lo || n > hi {
			return errors.New("out of range")
		}
		*dst = n
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
		return errors.New("unknown value")
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
			return errors.New("must be greater than 0")
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
type settingFlag struct {
	s    *mgrSetting
	name string
	bad  **ConfigError
}

func (f settingFlag) String() string { return "" }

func (f settingFlag) IsBoolFlag() bool { return f.s.isBool }

func (f settingFlag) Set(v string) error {
	if err := f.s.set(v); err != nil {
		ce := &ConfigError{Name: "--" + f.name, Value: f.s.shown(v), Valid: f.s.valid, Err: err}
		*f.bad = ce
		return ce
	}
	return nil
}
