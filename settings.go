package main

// Settings shared by every mode's command line: the error for a bad setting,
// the root logger, and the tables printed by --help.

import (
	"io"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/cli"
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

// printEnvUsage writes every variable of spec, from its struct tags so it
// cannot drift, wrapped at cli.Width.
func printEnvUsage(w io.Writer, spec any) {
	settings.WriteUsage(w, settings.Vars(spec))
}

// usageError is a bad command line that is not one setting (an unknown flag,
// a stray argument).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
