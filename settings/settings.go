// Package settings reads every mode's settings with one parser per kind of
// value, so a duration, a boolean, an admin address or a log format means the
// same thing in wrap mode, doctor, the shutdown manager, drain and inject.
//
// The rules, documented once (README.md, "Values"):
//   - Duration: a Go duration (500ms, 30s, 1m30s) or a bare number of
//     seconds (5, 2.5). Never negative; at most 24h.
//   - Boolean (our own variables and flags): true, false, 1, 0, yes, no, on,
//     off, in any case.
//   - Admin address: http://host[:port], https://host[:port],
//     unix:///path.sock, or a bare absolute path, which is a Unix socket.
//   - Log format: text or json. Log level: trace, debug, info, warn, error
//     or off.
//   - An empty environment variable is unset (Helm renders empty strings).
//
// Variables inherited from a peer tool are read by its own rule instead
// (see Peer* in compat.go), never refused, with one warning when the value
// is not one both rules read the same way.
package settings

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"envoy-lifecycle/envoy"
)

// Error is a bad setting. It names the variable or flag, echoes the value
// and says what is valid, on one line.
type Error struct {
	Name  string // ENVOY_LIFECYCLE_DRAIN_DELAY or --delay
	Value string
	Valid string
	Err   error // the reason; may be nil
}

func (e *Error) Error() string {
	v := e.Value
	// A URL's password must not reach a log line or the termination
	// message through its echo.
	if strings.ContainsAny(v, "@?") {
		v = envoy.RedactAddress(v)
	}
	msg := fmt.Sprintf("%s=%q: ", e.Name, v)
	if e.Err != nil {
		msg += e.Err.Error() + " "
	}
	return msg + "(valid: " + e.Valid + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// Reasons shared by the parsers.
var (
	ErrEmpty      = errors.New("empty")
	ErrSyntax     = errors.New("cannot parse")
	ErrNegative   = errors.New("negative")
	ErrTooLarge   = errors.New("too large")
	ErrOutOfRange = errors.New("out of range")
	ErrUnknown    = errors.New("unknown value")
)

// What each kind accepts, for messages and help.
const (
	ValidDuration  = "a duration such as 500ms, 30s or 1m30s, or a number of seconds such as 5 or 2.5"
	ValidBool      = "true, false, 1, 0, yes, no, on or off (any case)"
	ValidAdmin     = "http://host:port, https://host:port, unix:///path.sock or an absolute socket path"
	ValidHTTPURL   = "an http:// or https:// URL, such as http://127.0.0.1:15020/quitquitquit"
	ValidLogFormat = "text or json"
	ValidLogLevel  = "trace, debug, info, warn, error or off"
)

// MaxDuration bounds every duration: a day is far beyond any grace period
// or readiness wait, so longer is a mistake; it also keeps float seconds
// far from time.Duration's overflow. The shutdown manager's query
// parameters have the same bound.
const MaxDuration = 24 * time.Hour

// ParseDuration reads a duration: a Go duration or a bare number of seconds.
// Leading and trailing spaces are ignored.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrEmpty
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && isDecimal(s) {
		switch {
		case f < 0:
			return 0, ErrNegative
		case f > MaxDuration.Seconds():
			return 0, ErrTooLarge
		}
		// Rounded to the nanosecond, so 0.1 is 100ms exactly.
		return time.Duration(math.Round(f * float64(time.Second))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// time.ParseDuration says "invalid duration" for an overflow too.
		if durationSyntax.MatchString(s) {
			return 0, ErrTooLarge
		}
		return 0, ErrSyntax
	}
	switch {
	case d < 0:
		return 0, ErrNegative
	case d > MaxDuration:
		return 0, ErrTooLarge
	}
	return d, nil
}

// durationSyntax is what time.ParseDuration parses, short of overflow.
var durationSyntax = regexp.MustCompile(`^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// isDecimal reports whether s is a plain decimal number: ParseFloat also
// takes "inf", "NaN", "0x1p3" and "1e3", which are no one's seconds.
func isDecimal(s string) bool {
	dot := false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot:
			dot = true
		case (r == '-' || r == '+') && i == 0:
		default:
			return false
		}
	}
	return true
}

// ParseBool reads one of our own booleans.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	case "":
		return false, ErrEmpty
	}
	return false, ErrUnknown
}

// ParseAdmin reads an Envoy admin (or pilot-agent status) address and
// returns it as a URL string envoy.New accepts. A bare absolute path is a
// Unix socket, as Contour passes it.
func ParseAdmin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	if strings.HasPrefix(s, "/") {
		s = "unix://" + s
	}
	if _, err := envoy.ParseAdminURL(s); err != nil {
		return "", errors.New(AdminReason(err))
	}
	return s, nil
}

// AdminReason is the reason of an envoy.ParseAdminURL error, for an Error
// that already echoes the value and lists what is valid.
func AdminReason(err error) string {
	var ae *envoy.AddressError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return err.Error()
}

// ParseHTTPURL checks an http:// or https:// URL (a quit endpoint). It
// returns the URL trimmed of spaces.
func ParseHTTPURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	// url.Parse reads "localhost:1" as scheme "localhost": say what is
	// missing instead.
	if !strings.Contains(s, "://") {
		return "", errors.New("missing http:// or https://")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("malformed URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", errors.New("missing host")
	}
	return s, nil
}

// ParseLogFormat reads a log format.
func ParseLogFormat(s string) (string, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "text", "json":
		return s, nil
	case "":
		return "", ErrEmpty
	}
	return "", ErrUnknown
}

// ParseLogLevel reads a log level (hclog's names, plus off).
func ParseLogLevel(s string) (string, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "trace", "debug", "info", "warn", "error", "off":
		return s, nil
	case "warning":
		return "warn", nil
	case "":
		return "", ErrEmpty
	}
	return "", ErrUnknown
}

// ParseInt reads a whole number from lo to hi.
func ParseInt(s string, lo, hi int64) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrEmpty
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, ErrOutOfRange
		}
		return 0, ErrSyntax
	}
	if n < lo || n > hi {
		return 0, ErrOutOfRange
	}
	return n, nil
}

// ValidInt says what ParseInt(_, lo, hi) accepts.
func ValidInt(lo, hi int64) string {
	if hi == math.MaxInt64 {
		return fmt.Sprintf("a whole number of %d or more", lo)
	}
	return fmt.Sprintf("a whole number from %d to %d", lo, hi)
}
