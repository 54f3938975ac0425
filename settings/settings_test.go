package settings

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  error
	}{
		{"5", 5 * time.Second, nil},
		{"0", 0, nil},
		{"2.5", 2500 * time.Millisecond, nil},
		{"0.1", 100 * time.Millisecond, nil},
		{".5", 500 * time.Millisecond, nil},
		{" 30 ", 30 * time.Second, nil},
		{"+5", 5 * time.Second, nil},
		{"500ms", 500 * time.Millisecond, nil},
		{"1m30s", 90 * time.Second, nil},
		{"24h", MaxDuration, nil},
		{"86400", MaxDuration, nil},
		{"", 0, ErrEmpty},
		{"   ", 0, ErrEmpty},
		{"-1", 0, ErrNegative},
		{"-1s", 0, ErrNegative},
		{"24h0m1s", 0, ErrTooLarge},
		{"86401", 0, ErrTooLarge},
		{"1e3", 0, ErrSyntax},
		{"inf", 0, ErrSyntax},
		{"NaN", 0, ErrSyntax},
		{"0x10", 0, ErrSyntax},
		{"1d", 0, ErrSyntax},
		{"5 s", 0, ErrSyntax},
		{"abc", 0, ErrSyntax},
		{"9999999999999999999h", 0, ErrTooLarge},
		{"99999999999999999999", 0, ErrTooLarge},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("ParseDuration(%q) got %v, %v, want %v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true "} {
		if b, err := ParseBool(s); !b || err != nil {
			t.Errorf("ParseBool(%q) got %v, %v, want true", s, b, err)
		}
	}
	for _, s := range []string{"false", "FALSE", "0", "no", "No", "off", "OFF"} {
		if b, err := ParseBool(s); b || err != nil {
			t.Errorf("ParseBool(%q) got %v, %v, want false", s, b, err)
		}
	}
	// Exactly the list in ValidBool, nothing more: t, y, 2 are typos.
	for _, s := range []string{"t", "f", "y", "n", "2", "truee", "enabled", ""} {
		if _, err := ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q) accepted, want an error", s)
		}
	}
	for _, w := range []string{"true", "false", "1", "0", "yes", "no", "on", "off"} {
		if !strings.Contains(ValidBool, w) {
			t.Errorf("ValidBool %q does not list %q", ValidBool, w)
		}
	}
}

func TestParseAdmin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, reason string
	}{
		{"http://127.0.0.1:15000", "http://127.0.0.1:15000", ""},
		{"https://[::1]:9901/", "https://[::1]:9901/", ""},
		{"unix:///run/envoy/admin.sock", "unix:///run/envoy/admin.sock", ""},
		{"/run/envoy/admin.sock", "unix:///run/envoy/admin.sock", ""},
		{" http://localhost:9901 ", "http://localhost:9901", ""},
		{"localhost:15000", "", "missing scheme"},
		{"run/envoy/admin.sock", "", "missing scheme"},
		{"ftp://x", "", `unsupported scheme "ftp"`},
		{"http://h:70000", "", "out of range"},
		{"http://u:secret@h:1", "", "user info"},
		{"", "", "empty"},
	}
	for _, tt := range tests {
		got, err := ParseAdmin(tt.in)
		if got != tt.want || (tt.reason == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.reason)) {
			t.Errorf("ParseAdmin(%q) got %q, %v, want %q, %q", tt.in, got, err, tt.want, tt.reason)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseAdmin(%q) echoes the password: %v", tt.in, err)
		}
	}
}

func TestParseHTTPURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, reason string }{
		{"http://127.0.0.1:15020/quitquitquit", ""},
		{"https://example.test/x", ""},
		{"localhost:1", "missing http:// or https://"},
		{"unix:///x.sock", `scheme "unix" is not http or https`},
		{"http://", "missing host"},
		{"http://a b", "malformed URL"},
	}
	for _, tt := range tests {
		_, err := ParseHTTPURL(tt.in)
		if (tt.reason == "") != (err == nil) || (err != nil && err.Error() != tt.reason) {
			t.Errorf("ParseHTTPURL(%q) got %v, want %q", tt.in, err, tt.reason)
		}
	}
}

func TestParseLog(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"text": "text", "JSON": "json", " json": "json"} {
		if got, err := ParseLogFormat(in); got != want || err != nil {
			t.Errorf("ParseLogFormat(%q) got %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseLogFormat("logfmt"); !errors.Is(err, ErrUnknown) {
		t.Errorf("ParseLogFormat(logfmt) got %v, want ErrUnknown", err)
	}
	for in, want := range map[string]string{"INFO": "info", "warning": "warn", "off": "off", "trace": "trace"} {
		if got, err := ParseLogLevel(in); got != want || err != nil {
			t.Errorf("ParseLogLevel(%q) got %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseLogLevel("yes"); !errors.Is(err, ErrUnknown) {
		t.Errorf("ParseLogLevel(yes) got %v, want ErrUnknown", err)
	}
}

func TestParseInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		lo, hi int64
		want   int64
		err    error
	}{
		{"3", 1, 10, 3, nil},
		{" 10 ", 1, 10, 10, nil},
		{"0", 1, 10, 0, ErrOutOfRange},
		{"11", 1, 10, 0, ErrOutOfRange},
		{"abc", 1, 10, 0, ErrSyntax},
		{"1.5", 1, 10, 0, ErrSyntax},
		{"99999999999999999999", 0, 1 << 62, 0, ErrOutOfRange},
	}
	for _, tt := range tests {
		got, err := ParseInt(tt.in, tt.lo, tt.hi)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("ParseInt(%q, %d, %d) got %d, %v, want %d, %v", tt.in, tt.lo, tt.hi, got, err, tt.want, tt.err)
		}
	}
	// One message for every failure of one setting (item 14: "0 or more"
	// for abc but "1 or more" for 0).
	e := Env{Lookup: mapLookup(map[string]string{"A": "abc", "B": "0"})}
	_, errA := e.Int("A", 3, 1, 1<<31)
	_, errB := e.Int("B", 3, 1, 1<<31)
	var ea, eb *Error
	if !errors.As(errA, &ea) || !errors.As(errB, &eb) || ea.Valid != eb.Valid {
		t.Errorf("Int messages differ: %v / %v", errA, errB)
	}
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	e := Env{Lookup: mapLookup(map[string]string{
		"D": "5x", "B": "yep", "A": "localhost:15000", "L": "xml", "P": "0", "EMPTY": "",
	})}
	tests := []struct {
		name string
		read func() error
		want string
	}{
		{"D", func() error { _, err := e.Duration("D", 0, 0); return err }, `D="5x": cannot parse (valid: ` + ValidDuration + `)`},
		{"P", func() error { _, err := e.Duration("P", time.Second, time.Millisecond); return err }, `P="0": out of range (valid: at least 1ms: ` + ValidDuration + `)`},
		{"B", func() error { _, err := e.Bool("B", false); return err }, `B="yep": unknown value (valid: ` + ValidBool + `)`},
		{"A", func() error { _, err := e.Admin("A", ""); return err }, `A="localhost:15000": missing scheme (valid: ` + ValidAdmin + `)`},
		{"L", func() error { _, err := e.LogFormat("L", "text"); return err }, `L="xml": unknown value (valid: text or json)`},
	}
	for _, tt := range tests {
		err := tt.read()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s got %v, want %s", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: message is not one line: %q", tt.name, err)
		}
	}
	// Empty is unset, for our variables too.
	if d, err := e.Duration("EMPTY", 7*time.Second, 0); d != 7*time.Second || err != nil {
		t.Errorf("Duration(EMPTY) got %v, %v, want the default 7s", d, err)
	}
	if b, err := e.Bool("EMPTY", true); !b || err != nil {
		t.Errorf("Bool(EMPTY) got %v, %v, want the default true", b, err)
	}
}

func TestPick(t *testing.T) {
	t.Parallel()
	e := Env{Lookup: mapLookup(map[string]string{"SHUTDOWN_MANAGER_PORT": "8090", "PORT": "3000"})}
	name, v, ok := e.Pick("SHUTDOWN_MANAGER_PORT", "PORT")
	if name != "SHUTDOWN_MANAGER_PORT" || v != "8090" || !ok {
		t.Errorf("Pick got %s=%s %v, want SHUTDOWN_MANAGER_PORT=8090", name, v, ok)
	}
	if len(e.Warnings) != 1 || e.Warnings[0].Name != "PORT" || !strings.Contains(e.Warnings[0].String(), "SHUTDOWN_MANAGER_PORT is set too and wins") {
		t.Errorf("Pick warnings got %v, want one about PORT", e.Warnings)
	}
	e = Env{Lookup: mapLookup(map[string]string{"PORT": "3000"})}
	if name, _, _ := e.Pick("SHUTDOWN_MANAGER_PORT", "PORT"); name != "PORT" || len(e.Warnings) != 0 {
		t.Errorf("Pick got %s, %v, want PORT and no warning", name, e.Warnings)
	}
}

func TestSecondsAndFormat(t *testing.T) {
	t.Parallel()
	secs := map[time.Duration]float64{
		6096 * time.Microsecond: 0.006096,
		10 * time.Minute:        600,
		300 * time.Millisecond:  0.3,
		1:                       0,
		1500 * time.Nanosecond:  0.000002,
	}
	for d, want := range secs {
		if got := Seconds(d); got != want {
			t.Errorf("Seconds(%v) got %v, want %v", d, got, want)
		}
	}
	format := map[time.Duration]string{
		10 * time.Minute: "10m", 2 * time.Hour: "2h", 90 * time.Second: "1m30s", 500 * time.Millisecond: "500ms", 0: "0s",
	}
	for d, want := range format {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) got %q, want %q", d, got, want)
		}
	}
}
