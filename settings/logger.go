package settings

import (
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// SecondsLogger wraps l so every duration logged has one form, in text and
// JSON alike: a key ending in _s with the seconds as a number, rounded to
// the microsecond ("took", 6096µs becomes took_s=0.006096). hclog itself
// writes a time.Duration as "6.096ms" in text and 6096000 (nanoseconds) in
// JSON; log processors want one unit. Call sites keep passing durations.
func SecondsLogger(l hclog.Logger) hclog.Logger {
	if _, ok := l.(secondsLogger); ok {
		return l
	}
	return secondsLogger{l}
}

type secondsLogger struct{ hclog.Logger }

// seconds is a logged duration: a JSON number, and in text the plain
// decimal (0.000025, where %v would write 2.5e-05).
type seconds float64

func (s seconds) String() string { return strconv.FormatFloat(float64(s), 'f', -1, 64) }

// inSeconds returns args with each time.Duration value rewritten; args
// itself is never modified (callers may reuse it).
func inSeconds(args []any) []any {
	var out []any
	for i := 0; i+1 < len(args); i += 2 {
		d, ok := args[i+1].(time.Duration)
		if !ok {
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		if key, ok := args[i].(string); ok && !strings.HasSuffix(key, "_s") {
			out[i] = key + "_s"
		}
		out[i+1] = seconds(Seconds(d))
	}
	if out == nil {
		return args
	}
	return out
}

func (l secondsLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, msg, inSeconds(args)...)
}
func (l secondsLogger) Trace(msg string, args ...any) { l.Logger.Trace(msg, inSeconds(args)...) }
func (l secondsLogger) Debug(msg string, args ...any) { l.Logger.Debug(msg, inSeconds(args)...) }
func (l secondsLogger) Info(msg string, args ...any)  { l.Logger.Info(msg, inSeconds(args)...) }
func (l secondsLogger) Warn(msg string, args ...any)  { l.Logger.Warn(msg, inSeconds(args)...) }
func (l secondsLogger) Error(msg string, args ...any) { l.Logger.Error(msg, inSeconds(args)...) }

func (l secondsLogger) With(args ...any) hclog.Logger {
	return secondsLogger{l.Logger.With(inSeconds(args)...)}
}
func (l secondsLogger) Named(name string) hclog.Logger { return secondsLogger{l.Logger.Named(name)} }
func (l secondsLogger) ResetNamed(name string) hclog.Logger {
	return secondsLogger{l.Logger.ResetNamed(name)}
}
