package main

// Settings shared by every mode's command line: the error for a bad setting,
// the root logger, and the tables printed by --help.

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
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

// printEnvUsage writes a table of every variable of spec: name, default,
// origin and meaning, read from the struct tags so it cannot drift.
func printEnvUsage(w io.Writer, spec any) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tFROM\tMEANING")
	t := reflect.TypeOf(spec).Elem()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("envconfig") == "" {
			continue
		}
		from := f.Tag.Get("from")
		if from == "" {
			from = "-"
		}
		def := f.Tag.Get("default")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Tag.Get("envconfig"), def, from, f.Tag.Get("desc"))
	}
	tw.Flush()
}

// usageError is a bad command line that is not one setting (an unknown flag,
// a stray argument).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
