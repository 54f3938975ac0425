package settings

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
)

const fuzzName = "ENVOY_LIFECYCLE_FUZZ"

// oneEnv is an Env holding only fuzzName=v.
func oneEnv(name, v string) *Env {
	return &Env{Lookup: func(n string) (string, bool) {
		if n == name {
			return v, true
		}
		return "", false
	}}
}

// checkErr holds any setting error to the house rule: one line, an *Error
// naming the variable and echoing the value.
func checkErr(t *testing.T, err error, name, value string) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("%s=%q: error %T %v is not an *Error", name, value, err, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%s=%q: error is not one line: %q", name, value, msg)
	}
	// A value with user info or a query is echoed with its secrets hidden.
	shown := value
	if strings.ContainsAny(value, "@?") {
		shown = envoy.RedactAddress(value)
	}
	if !strings.HasPrefix(msg, name+"=") || !strings.Contains(msg, strconv.Quote(shown)) {
		t.Fatalf("%s=%q: error does not name the variable and echo the value: %q", name, value, msg)
	}
	if !strings.Contains(msg, "(valid: ") {
		t.Fatalf("%s=%q: error does not say what is valid: %q", name, value, msg)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"", "0", "5", "2.5", " 30s ", "1m30s", "-1s", "-0", "+5", "24h", "24h0m0.000000001s", "86400", "86400.0000000001",
		"1e3", "inf", "NaN", "0x1p3", ".5", "5.", "1.5µs", "9223372036854775807ns", "99999999999h", "1h-1s", "0.0000000001", "1ms5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseDuration(%q) = %v with error %v", s, d, err)
			}
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNegative) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ParseDuration(%q): unlisted reason %v", s, err)
			}
			if strings.TrimSpace(s) != "" {
				_, cerr := CheckDuration(fuzzName, s, 0)
				checkErr(t, cerr, fuzzName, s)
			}
			return
		}
		if d < 0 || d > MaxDuration {
			t.Fatalf("ParseDuration(%q) = %v, outside 0..%v", s, d, MaxDuration)
		}
		fd := FormatDuration(d)
		if back, err := ParseDuration(fd); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; FormatDuration gives %q, which reads back as %v, %v", s, d, fd, back, err)
		}
		if back, err := time.ParseDuration(fd); err != nil || back != d {
			t.Fatalf("FormatDuration(%v) = %q is not a Go duration: %v, %v", d, fd, back, err)
		}
		if isDecimal(strings.TrimSpace(s)) {
			// A bare number is seconds, to the nanosecond.
			x, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if diff := x*1e9 - float64(d); diff > 1 || diff < -1 {
				t.Fatalf("ParseDuration(%q) = %v, not %v seconds", s, d, x)
			}
		}
		// Our minimum is enforced, and the error names and echoes.
		if d > 0 {
			if _, err := CheckDuration(fuzzName, s, d+1); err == nil {
				t.Fatalf("CheckDuration(%q, min %v) accepted %v", s, d+1, d)
			} else {
				checkErr(t, err, fuzzName, s)
			}
		}
	})
}

func FuzzParseBool(f *testing.F) {
	for _, s := range []string{"", "true", "FALSE", " yes ", "On", "0", "1", "2", "y", "truee", "ſ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBool(s)
		word := strings.ToLower(strings.TrimSpace(s))
		switch {
		case err == nil && b != (word == "true" || word == "1" || word == "yes" || word == "on"):
			t.Fatalf("ParseBool(%q) = %v", s, b)
		case err == nil && !b && word != "false" && word != "0" && word != "no" && word != "off":
			t.Fatalf("ParseBool(%q) = false, not one of the false words", s)
		case err != nil && b:
			t.Fatalf("ParseBool(%q) = true with error %v", s, err)
		}
		// Case does not matter (ASCII: no Unicode folding tricks).
		if b2, err2 := ParseBool(asciiUpper(s)); b2 != b || (err2 == nil) != (err == nil) {
			t.Fatalf("ParseBool(%q) = %v, %v but upper case %v, %v", s, b, err, b2, err2)
		}
		if _, err := oneEnv(fuzzName, s).Bool(fuzzName, false); err != nil {
			checkErr(t, err, fuzzName, s)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func FuzzParseAdmin(f *testing.F) {
	for _, s := range []string{"", "http://127.0.0.1:15000", "https://[::1]:15000/", "unix:///tmp/admin.sock", "/tmp/admin.sock", " /x ",
		"localhost:15000", "http://", "http://h:", "http://h:99999", "http://u:p@h", "http://h/x", "http://h?q", "http://h#f", "unix://", "ftp://h", "http://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ParseAdmin(s)
		if err != nil {
			if out != "" {
				t.Fatalf("ParseAdmin(%q) = %q with error %v", s, out, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ParseAdmin(%q): reason not one line: %q", s, err)
			}
			if _, err := oneEnv(fuzzName, s).Admin(fuzzName, ""); err != nil {
				checkErr(t, err, fuzzName, s)
			} else if s != "" {
				t.Fatalf("Env.Admin accepted %q, which ParseAdmin refuses", s)
			}
			return
		}
		if _, err := envoy.ParseAdminURL(out); err != nil {
			t.Fatalf("ParseAdmin(%q) = %q, which envoy.ParseAdminURL refuses: %v", s, out, err)
		}
		if again, err := ParseAdmin(out); err != nil || again != out {
			t.Fatalf("ParseAdmin(%q) = %q, but ParseAdmin(%q) = %q, %v", s, out, out, again, err)
		}
	})
}

func FuzzParseHTTPURL(f *testing.F) {
	for _, s := range []string{"", "http://127.0.0.1:15020/quitquitquit", " https://h/x ", "localhost:1", "ftp://h", "http://", "http:///x", "http://%zz", "http://[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ParseHTTPURL(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ParseHTTPURL(%q): reason not one line: %q", s, err)
			}
			checkErr(t, wrapErr(fuzzName, s, ValidHTTPURL, err), fuzzName, s)
			return
		}
		u, perr := url.Parse(out)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			t.Fatalf("ParseHTTPURL(%q) = %q, not an http(s) URL with a host: %v", s, out, perr)
		}
		if out != strings.TrimSpace(s) {
			t.Fatalf("ParseHTTPURL(%q) = %q, not the value trimmed", s, out)
		}
	})
}

func FuzzParseLog(f *testing.F) {
	for _, s := range []string{"", "text", "JSON", " info ", "warning", "WARN", "off", "verbose", "Trace\t"} {
		f.Add(s)
	}
	formats := map[string]bool{"text": true, "json": true}
	levels := map[string]bool{"trace": true, "debug": true, "info": true, "warn": true, "error": true, "off": true}
	f.Fuzz(func(t *testing.T, s string) {
		if out, err := ParseLogFormat(s); err == nil && !formats[out] {
			t.Fatalf("ParseLogFormat(%q) = %q", s, out)
		} else if err == nil {
			if again, _ := ParseLogFormat(out); again != out {
				t.Fatalf("ParseLogFormat(%q) = %q, which reads as %q", s, out, again)
			}
		} else if _, err := oneEnv(fuzzName, s).LogFormat(fuzzName, "text"); err != nil {
			checkErr(t, err, fuzzName, s)
		}
		if out, err := ParseLogLevel(s); err == nil && !levels[out] {
			t.Fatalf("ParseLogLevel(%q) = %q", s, out)
		} else if err == nil {
			if again, _ := ParseLogLevel(out); again != out {
				t.Fatalf("ParseLogLevel(%q) = %q, which reads as %q", s, out, again)
			}
		} else if _, err := oneEnv(fuzzName, s).LogLevel(fuzzName, "info"); err != nil {
			checkErr(t, err, fuzzName, s)
		}
	})
}

func FuzzParseInt(f *testing.F) {
	f.Add("8080", int64(1), int64(65535))
	f.Add("0", int64(1), int64(65535))
	f.Add(" -3 ", int64(-5), int64(5))
	f.Add("9223372036854775808", int64(0), int64(1<<63-1))
	f.Add("+7", int64(0), int64(10))
	f.Add("1e3", int64(0), int64(10000))
	f.Fuzz(func(t *testing.T, s string, lo, hi int64) {
		if lo > hi {
			lo, hi = hi, lo
		}
		n, err := ParseInt(s, lo, hi)
		if err != nil {
			if _, err := oneEnv(fuzzName, s).Int(fuzzName, lo, lo, hi); err != nil {
				checkErr(t, err, fuzzName, s)
			}
			return
		}
		if n < lo || n > hi {
			t.Fatalf("ParseInt(%q, %d, %d) = %d, out of range", s, lo, hi, n)
		}
		if want, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64); perr != nil || want != n {
			t.Fatalf("ParseInt(%q) = %d, strconv says %d, %v", s, n, want, perr)
		}
	})
}

// FuzzPeer reads one inherited variable by its peers' rule: never an error,
// at most one one-line warning naming it, and the value its peers took
// (booleans) or one within our bounds (durations).
func FuzzPeer(f *testing.F) {
	for _, s := range []string{"", "true", "false", "TRUE", " true", "1", "yes", "no", "5", "30s", " 30s", "-1s", "0", "0s", "-5", "25h", "1e3", "junk"} {
		f.Add(uint8(0), s, false)
	}
	f.Add(uint8(12), "0", true)
	f.Fuzz(func(t *testing.T, which uint8, v string, positive bool) {
		inh := InheritedVars[int(which)%len(InheritedVars)]
		e := oneEnv(inh.Name, v)
		const def = 7 * time.Second
		switch inh.Kind {
		case KindFlag:
			for _, d := range []bool{false, true} {
				got := e.PeerBool(inh.Name, d)
				want := d
				if v == "true" || v == "false" {
					want = v == "true"
				}
				if got != want {
					t.Fatalf("PeerBool(%s=%q, def %v) = %v, the peers read %v", inh.Name, v, d, got, want)
				}
			}
		case KindYes:
			if got := e.PeerYes(inh.Name); got != (v == "yes") {
				t.Fatalf("PeerYes(%s=%q) = %v", inh.Name, v, got)
			}
		case KindDuration:
			d, set := e.PeerDuration(inh.Name, def, positive)
			if !set && d != def {
				t.Fatalf("PeerDuration(%s=%q) = %v unset, not the default", inh.Name, v, d)
			}
			if set && (d < 0 || d > MaxDuration || (positive && d == 0)) {
				t.Fatalf("PeerDuration(%s=%q, positive %v) = %v, out of bounds", inh.Name, v, positive, d)
			}
			if set != e.Set(inh.Name) {
				t.Fatalf("PeerDuration(%s=%q) set=%v but Env.Set says %v", inh.Name, v, set, e.Set(inh.Name))
			}
			if pd, err := time.ParseDuration(v); err == nil && pd > 0 && pd <= MaxDuration && d != pd {
				t.Fatalf("PeerDuration(%s=%q) = %v, the peers read %v", inh.Name, v, d, pd)
			}
		default:
			return
		}
		// PeerBool was called twice above: at most one warning per call.
		if len(e.Warnings) > 2 {
			t.Fatalf("%s=%q: %d warnings: %v", inh.Name, v, len(e.Warnings), e.Warnings)
		}
		for _, w := range e.Warnings {
			line := w.String()
			if w.Name != inh.Name || w.Value != v || strings.ContainsAny(line, "\n\r") || !strings.Contains(line, strconv.Quote(v)) {
				t.Fatalf("%s=%q: bad warning %q", inh.Name, v, line)
			}
		}
	})
}

// fuzzSpec has one field of every kind Load reads, ours and inherited.
type fuzzSpec struct {
	Delay   time.Duration `envconfig:"ENVOY_LIFECYCLE_FUZZ_DELAY" default:"5s" min:"1ms"`
	Wait    time.Duration `envconfig:"QUIT_REQUEST_TIMEOUT" default:"5s" min:"1ms"`
	Limit   time.Duration `envconfig:"WAIT_FOR_ENVOY_TIMEOUT"`
	Debug   bool          `envconfig:"ENVOY_LIFECYCLE_FUZZ_DEBUG"`
	Start   bool          `envconfig:"START_WITHOUT_ENVOY"`
	Said    *bool         `envconfig:"ENVOY_LIFECYCLE_FUZZ_SAID"`
	Admin   string        `envconfig:"ENVOY_LIFECYCLE_FUZZ_ADMIN" default:"http://127.0.0.1:15000" kind:"admin"`
	Level   string        `envconfig:"ENVOY_LIFECYCLE_FUZZ_LEVEL" default:"info" kind:"loglevel"`
	Workers int           `envconfig:"ENVOY_LIFECYCLE_FUZZ_WORKERS" default:"2" min:"1"`
	Quit    []string      `envconfig:"GENERIC_QUIT_ENDPOINTS" kind:"urls"`
	Log     string        `envconfig:"ENVOY_LIFECYCLE_FUZZ_LOG" empty:"none"`
}

var fuzzSpecNames = []string{"ENVOY_LIFECYCLE_FUZZ_DELAY", "QUIT_REQUEST_TIMEOUT", "WAIT_FOR_ENVOY_TIMEOUT", "ENVOY_LIFECYCLE_FUZZ_DEBUG",
	"START_WITHOUT_ENVOY", "ENVOY_LIFECYCLE_FUZZ_SAID", "ENVOY_LIFECYCLE_FUZZ_ADMIN", "ENVOY_LIFECYCLE_FUZZ_LEVEL",
	"ENVOY_LIFECYCLE_FUZZ_WORKERS", "GENERIC_QUIT_ENDPOINTS", "ENVOY_LIFECYCLE_FUZZ_LOG"}

// FuzzLoad loads fuzzSpec from an environment of arbitrary values: it
// either fails with one *Error about one of its variables, or fills every
// field within its bounds.
func FuzzLoad(f *testing.F) {
	f.Add("10s\x00-1\x00junk\x00yes\x00TRUE\x00off\x00/tmp/a.sock\x00warning\x003\x00http://a/q, ,x\x00")
	f.Add("0\x000\x00-1s\x00\x00\x00\x00http://h:1\x00\x000\x00\x00text")
	f.Add("")
	f.Fuzz(func(t *testing.T, packed string) {
		values := strings.Split(packed, "\x00")
		env := map[string]string{}
		for i, name := range fuzzSpecNames {
			if i < len(values) {
				env[name] = values[i]
			}
		}
		e := &Env{Lookup: func(n string) (string, bool) { v, ok := env[n]; return v, ok }}
		var s fuzzSpec
		if err := Load(e, &s); err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Load: %T %v is not an *Error", err, err)
			}
			if _, ok := env[se.Name]; !ok {
				t.Fatalf("Load: error about %q, which is not set: %v", se.Name, err)
			}
			if _, inh := Lookup(se.Name); inh && se.Name != "GENERIC_QUIT_ENDPOINTS" {
				t.Fatalf("Load: an inherited variable failed: %v", err)
			}
			checkErr(t, err, se.Name, se.Value)
			return
		}
		// An inherited duration is never refused: its min only keeps it above 0.
		if s.Delay < time.Millisecond || s.Delay > MaxDuration || s.Wait <= 0 || s.Wait > MaxDuration || s.Limit < 0 || s.Limit > MaxDuration {
			t.Fatalf("Load: durations out of bounds: %+v", s)
		}
		if s.Workers < 1 {
			t.Fatalf("Load: workers %d below its minimum", s.Workers)
		}
		if _, err := ParseAdmin(s.Admin); err != nil {
			t.Fatalf("Load: admin %q does not parse: %v", s.Admin, err)
		}
		if _, err := ParseLogLevel(s.Level); err != nil {
			t.Fatalf("Load: level %q does not parse: %v", s.Level, err)
		}
		for _, q := range s.Quit {
			if _, err := ParseHTTPURL(q); err != nil {
				t.Fatalf("Load: quit endpoint %q does not parse: %v", q, err)
			}
		}
		if v := env["ENVOY_LIFECYCLE_FUZZ_LOG"]; s.Log != v {
			t.Fatalf("Load: log %q, set to %q", s.Log, v)
		}
		if v, ok := env["ENVOY_LIFECYCLE_FUZZ_SAID"]; (s.Said != nil) != (ok && v != "") {
			t.Fatalf("Load: *bool set=%v for %q", s.Said != nil, v)
		}
		for _, w := range e.Warnings {
			if strings.ContainsAny(w.String(), "\n\r") {
				t.Fatalf("Load: warning not one line: %q", w.String())
			}
		}
	})
}
