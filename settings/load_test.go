package settings

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"envoy-lifecycle/cli"
)

type testSpec struct {
	Admin    string        `envconfig:"ENVOY_ADMIN_API" kind:"admin" desc:"Envoy admin address."`
	Kill     string        `envconfig:"ENVOY_KILL_API" kind:"url" desc:"Quit URL."`
	Never    bool          `envconfig:"NEVER_KILL_ENVOY" default:"false" desc:"Never stop the proxy."`
	Start    bool          `envconfig:"START_WITHOUT_ENVOY" default:"false" desc:"Do not wait."`
	Wait     time.Duration `envconfig:"WAIT_FOR_ENVOY_TIMEOUT" desc:"Start anyway after this."`
	QuitReq  time.Duration `envconfig:"QUIT_REQUEST_TIMEOUT" default:"5s" min:"1ns" desc:"Quit timeout."`
	Generic  []string      `envconfig:"GENERIC_QUIT_ENDPOINTS" kind:"urls" desc:"POSTed first."`
	Logging  *bool         `envconfig:"SCUTTLE_LOGGING" desc:"false: errors only."`
	Level    string        `envconfig:"ENVOY_LIFECYCLE_LOG_LEVEL" default:"info" kind:"loglevel" desc:"Log level."`
	Format   string        `envconfig:"ENVOY_LIFECYCLE_LOG_FORMAT" default:"text" kind:"logformat" desc:"Log format."`
	Drain    bool          `envconfig:"ENVOY_LIFECYCLE_DRAIN" default:"true" desc:"Drain first."`
	Delay    time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_DELAY" default:"5s" desc:"Wait after failing health checks."`
	Period   time.Duration `envconfig:"ENVOY_LIFECYCLE_DRAIN_PERIOD" default:"500ms" min:"1ms" desc:"Poll interval."`
	Retries  int           `envconfig:"ENVOY_LIFECYCLE_QUIT_RETRIES" default:"3" min:"1" desc:"Attempts."`
	MinConns uint64        `envconfig:"ENVOY_LIFECYCLE_DRAIN_MIN_CONNECTIONS" default:"0" desc:"Minimum."`
}

// TestLoad: item 1's reproductions start the app (no error), item 4's
// values mean the same as in every other mode.
func TestLoad(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"START_WITHOUT_ENVOY":          "",
		"NEVER_KILL_ENVOY":             "yes",
		"WAIT_FOR_ENVOY_TIMEOUT":       "",
		"ENVOY_ADMIN_API":              "/run/envoy/admin.sock",
		"GENERIC_QUIT_ENDPOINTS":       "http://127.0.0.1:1/quit, ,localhost:2",
		"SCUTTLE_LOGGING":              "0",
		"ENVOY_LIFECYCLE_DRAIN_DELAY":  "5",
		"ENVOY_LIFECYCLE_DRAIN":        "YES",
		"ENVOY_LIFECYCLE_LOG_FORMAT":   "JSON",
		"ENVOY_LIFECYCLE_QUIT_RETRIES": "",
	}
	e := Env{Lookup: mapLookup(env)}
	var c testSpec
	if err := Load(&e, &c); err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := testSpec{
		Admin: "unix:///run/envoy/admin.sock", QuitReq: 5 * time.Second, Generic: []string{"http://127.0.0.1:1/quit"},
		Level: "info", Format: "json", Drain: true, Delay: 5 * time.Second, Period: 500 * time.Millisecond, Retries: 3,
	}
	if c.Logging == nil || !*c.Logging {
		t.Errorf("SCUTTLE_LOGGING=0 got %v, want true (scuttle: only \"false\" turns logs off)", c.Logging)
	}
	c.Logging = nil
	if !equalSpec(c, want) {
		t.Errorf("Load got %+v, want %+v", c, want)
	}
	var names []string
	for _, w := range e.Warnings {
		names = append(names, w.Name)
	}
	if got := strings.Join(names, ","); got != "NEVER_KILL_ENVOY,GENERIC_QUIT_ENDPOINTS,SCUTTLE_LOGGING" {
		t.Errorf("warnings got %s (%v), want NEVER_KILL_ENVOY,GENERIC_QUIT_ENDPOINTS,SCUTTLE_LOGGING", got, e.Warnings)
	}
}

func equalSpec(a, b testSpec) bool {
	return a.Admin == b.Admin && a.Kill == b.Kill && a.Never == b.Never && a.Start == b.Start && a.Wait == b.Wait &&
		a.QuitReq == b.QuitReq && strings.Join(a.Generic, ",") == strings.Join(b.Generic, ",") && a.Level == b.Level &&
		a.Format == b.Format && a.Drain == b.Drain && a.Delay == b.Delay && a.Period == b.Period && a.Retries == b.Retries &&
		a.MinConns == b.MinConns
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, value, want string }{
		{"ENVOY_ADMIN_API", "localhost:15000", `ENVOY_ADMIN_API="localhost:15000": missing scheme (valid: ` + ValidAdmin + `)`},
		{"ENVOY_KILL_API", "localhost:1", `ENVOY_KILL_API="localhost:1": missing http:// or https:// (valid: ` + ValidHTTPURL + `)`},
		{"ENVOY_LIFECYCLE_DRAIN", "t", `ENVOY_LIFECYCLE_DRAIN="t": unknown value (valid: ` + ValidBool + `)`},
		{"ENVOY_LIFECYCLE_DRAIN_DELAY", "-1s", `ENVOY_LIFECYCLE_DRAIN_DELAY="-1s": negative (valid: ` + ValidDuration + `)`},
		{"ENVOY_LIFECYCLE_DRAIN_PERIOD", "0", `ENVOY_LIFECYCLE_DRAIN_PERIOD="0": out of range (valid: at least 1ms: ` + ValidDuration + `)`},
		{"ENVOY_LIFECYCLE_QUIT_RETRIES", "0", `ENVOY_LIFECYCLE_QUIT_RETRIES="0": out of range (valid: a whole number of 1 or more)`},
		{"ENVOY_LIFECYCLE_QUIT_RETRIES", "abc", `ENVOY_LIFECYCLE_QUIT_RETRIES="abc": cannot parse (valid: a whole number of 1 or more)`},
		{"ENVOY_LIFECYCLE_DRAIN_MIN_CONNECTIONS", "-1", `ENVOY_LIFECYCLE_DRAIN_MIN_CONNECTIONS="-1": out of range (valid: a whole number of 0 or more)`},
		{"ENVOY_LIFECYCLE_LOG_LEVEL", "loud", `ENVOY_LIFECYCLE_LOG_LEVEL="loud": unknown value (valid: ` + ValidLogLevel + `)`},
	}
	for _, tt := range tests {
		e := Env{Lookup: mapLookup(map[string]string{tt.name: tt.value})}
		var c testSpec
		err := Load(&e, &c)
		var se *Error
		if !errors.As(err, &se) || err.Error() != tt.want {
			t.Errorf("%s=%q got %v, want %s", tt.name, tt.value, err, tt.want)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	vars := Vars(&testSpec{})
	if len(vars) != 15 || vars[0].Name != "ENVOY_ADMIN_API" || vars[0].From != "envoy-preflight, envoy-preflight fork, scuttle, kvij/scuttle" {
		t.Fatalf("Vars got %d: %+v", len(vars), vars)
	}
	var b bytes.Buffer
	WriteUsage(&b, vars)
	for i, l := range strings.Split(b.String(), "\n") {
		if utf8.RuneCountInString(l) > cli.Width {
			t.Errorf("usage line %d over %d columns: %q", i, cli.Width, l)
		}
	}
	if !strings.Contains(b.String(), "  ENVOY_LIFECYCLE_DRAIN_DELAY  (default 5s)\n      Wait after failing health checks.\n") {
		t.Errorf("usage lacks DRAIN_DELAY's block:\n%s", b.String())
	}
	b.Reset()
	WriteMarkdown(&b, vars)
	if !strings.Contains(b.String(), "| `ENVOY_ADMIN_API` | – | envoy-preflight, envoy-preflight fork, scuttle, kvij/scuttle | Envoy admin address. |\n") {
		t.Errorf("markdown lacks ENVOY_ADMIN_API's row:\n%s", b.String())
	}
}

// TestLoadKeepsPresets: a field without a default tag keeps the value it
// had when its variable is unset (the wrap mode presets lifecycle's
// defaults), and help shows that value.
func TestLoadKeepsPresets(t *testing.T) {
	t.Parallel()
	type spec struct {
		D time.Duration `envconfig:"D"`
		S string        `envconfig:"S"`
		N int           `envconfig:"N"`
		B bool          `envconfig:"B"`
	}
	c := spec{D: 15 * time.Second, S: "/dev/termination-log", N: 3, B: true}
	if err := Load(&Env{Lookup: mapLookup(nil)}, &c); err != nil || c != (spec{15 * time.Second, "/dev/termination-log", 3, true}) {
		t.Errorf("Load with nothing set got %+v, %v; want the presets", c, err)
	}
	if err := Load(&Env{Lookup: mapLookup(map[string]string{"D": "2", "S": "/x", "N": "4", "B": "no"})}, &c); err != nil || c != (spec{2 * time.Second, "/x", 4, false}) {
		t.Errorf("Load with values got %+v, %v", c, err)
	}
	vars := Vars(&spec{D: 15 * time.Second, S: "/dev/termination-log"})
	if vars[0].Default != "15s" || vars[1].Default != "/dev/termination-log" || vars[2].Default != "" {
		t.Errorf("Vars defaults got %+v", vars)
	}
}

// TestLoadEmptyNone: a variable whose empty value is documented as "none"
// keeps that meaning; every other empty variable is unset.
func TestLoadEmptyNone(t *testing.T) {
	t.Parallel()
	type spec struct {
		Log  string `envconfig:"LOG" empty:"none"`
		Path string `envconfig:"PATH_X"`
	}
	c := spec{Log: "/dev/termination-log", Path: "/default"}
	if err := Load(&Env{Lookup: mapLookup(map[string]string{"LOG": "", "PATH_X": ""})}, &c); err != nil || c.Log != "" || c.Path != "/default" {
		t.Errorf("got %+v, %v; want Log none and Path the default", c, err)
	}
}

// TestLoadFromProcessEnvironment: without Lookup, envconfig reads the
// variables: only the tag's name (not the field's), an empty value is
// unset or "none" as each field says, and a bad value is this package's
// one-line error, not envconfig's.
func TestLoadFromProcessEnvironment(t *testing.T) {
	type spec struct {
		Delay time.Duration `envconfig:"SETTINGS_TEST_DELAY" default:"5s" min:"1ms"`
		Log   string        `envconfig:"SETTINGS_TEST_LOG" empty:"none"`
		Keep  string        `envconfig:"SETTINGS_TEST_KEEP"`
		On    bool          `envconfig:"SETTINGS_TEST_ON"`
	}
	t.Setenv("SETTINGS_TEST_DELAY", "2.5")
	t.Setenv("SETTINGS_TEST_LOG", "")
	t.Setenv("SETTINGS_TEST_KEEP", "")
	t.Setenv("SETTINGS_TEST_ON", "Yes")
	t.Setenv("DELAY", "9s") // envconfig's field-name fallback must not apply
	c := spec{Log: "/dev/termination-log", Keep: "/default"}
	e := Env{}
	if err := Load(&e, &c); err != nil || c != (spec{2500 * time.Millisecond, "", "/default", true}) {
		t.Errorf("Load got %+v, %v; want 2.5s, none, the preset and true", c, err)
	}
	if r := e.gathered["SETTINGS_TEST_LOG"]; !r.set || r.s != "" || len(e.gathered) != 4 {
		t.Errorf("envconfig gathered %+v, want the 4 variables, SETTINGS_TEST_LOG set and empty", e.gathered)
	}

	t.Setenv("SETTINGS_TEST_DELAY", "0.1ms")
	err := Load(&Env{}, &c)
	const want = `SETTINGS_TEST_DELAY="0.1ms": out of range (valid: at least 1ms: ` + ValidDuration + ")"
	if err == nil || err.Error() != want {
		t.Errorf("SETTINGS_TEST_DELAY=0.1ms got %v, want %s", err, want)
	}
	t.Setenv("SETTINGS_TEST_DELAY", "")
	t.Setenv("SETTINGS_TEST_ON", "maybe")
	if err := Load(&Env{}, &c); err == nil || err.Error() != `SETTINGS_TEST_ON="maybe": unknown value (valid: `+ValidBool+")" {
		t.Errorf("SETTINGS_TEST_ON=maybe got %v", err)
	}
}
