package shutdownmgr

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"5", 5 * time.Second, ""},
		{"2.5", 2500 * time.Millisecond, ""},
		{"0", 0, ""},
		{" 300 ", 300 * time.Second, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"-1", 0, "negative"},
		{"-5s", 0, "negative"},
		{"abc", 0, "cannot parse"},
		{"", 0, "empty"},
		// The shared rule (settings.ParseDuration): seconds are plain
		// decimals, so NaN, Inf and exponents are refused.
		{"NaN", 0, "cannot parse"},
		{"Inf", 0, "cannot parse"},
		{"1e300", 0, "cannot parse"},
		{"1e3", 0, "cannot parse"},
		{"90000", 0, "too large"},
		{"9223372036.854775807", 0, "too large"},
		{"5 s", 0, "cannot parse"},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.in)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("ParseDuration(%q) error %v, want %v", c.in, err, c.want)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("ParseDuration(%q) got %v, %v; want error containing %q", c.in, got, err, c.wantErr)
		case c.wantErr == "" && got != c.want:
			t.Errorf("ParseDuration(%q) got %v, want %v", c.in, got, c.want)
		}
	}
}

// TestParseWaitParams: a request that only waits is held to the same
// syntax, but its deadline is not compared with delay+period.
func TestParseWaitParams(t *testing.T) {
	t.Parallel()
	def := Params{Delay: 5 * time.Second, Period: time.Second, Deadline: 300 * time.Second}
	cases := []struct {
		query   string
		want    Params
		wantErr string
	}{
		{"", def, ""},
		{"deadline=0.2", Params{5 * time.Second, time.Second, 200 * time.Millisecond, false}, ""},
		{"delay=400", Params{400 * time.Second, time.Second, 300 * time.Second, false}, ""},
		{"delay=auto", Params{5 * time.Second, time.Second, 300 * time.Second, true}, ""},
		{"delay=AUTO", Params{5 * time.Second, time.Second, 300 * time.Second, true}, ""},
		{"deadline=0", Params{}, `deadline="0": must be greater than 0`},
		{"deadline=-1", Params{}, `deadline="-1": negative`},
		{"period=0", Params{}, `period="0": must be greater than 0`},
		{"delay=abc", Params{}, `delay="abc": cannot parse`},
		{"delay=soon", Params{}, "; or auto)"}, // the 400 says auto is valid too
		{"deadline=1&deadline=2", Params{}, "given more than once"},
	}
	for _, c := range cases {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseWaitParams(q, def)
		if c.wantErr == "" {
			if err != nil || got != c.want {
				t.Errorf("parseWaitParams(%q) got %+v, %v; want %+v", c.query, got, err, c.want)
			}
			continue
		}
		var pe *ParamError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("parseWaitParams(%q) error got %v, want a *ParamError containing %q", c.query, err, c.wantErr)
		}
	}
}

func TestParseParams(t *testing.T) {
	t.Parallel()
	def := Params{Delay: 5 * time.Second, Period: time.Second, Deadline: 300 * time.Second}
	cases := []struct {
		name       string
		query      string
		startDelay time.Duration
		want       Params
		wantErr    string // substring of the one-line reason
	}{
		{"defaults", "", 0, def, ""},
		{"seconds", "delay=1&period=2&deadline=30", 0, Params{time.Second, 2 * time.Second, 30 * time.Second, false}, ""},
		{"go durations", "delay=100ms&period=20ms&deadline=1s", 0, Params{100 * time.Millisecond, 20 * time.Millisecond, time.Second, false}, ""},
		{"decimal seconds", "period=0.25", 0, Params{5 * time.Second, 250 * time.Millisecond, 300 * time.Second, false}, ""},
		{"deadline equal to delay+period", "delay=1&period=1&deadline=2", 0, Params{time.Second, time.Second, 2 * time.Second, false}, ""},
		{"negative delay", "delay=-1", 0, Params{}, `delay="-1": negative`},
		{"non-number", "period=abc", 0, Params{}, `period="abc": cannot parse`},
		{"zero period", "period=0", 0, Params{}, `period="0": must be greater than 0`},
		{"deadline shorter than delay+period", "delay=1&period=1&deadline=1", 0, Params{}, `deadline="1": is shorter than delay+period (2s)`},
		{"zero deadline", "deadline=0", 0, Params{}, `deadline="0"`},
		{"start delay counts", "delay=0&period=1&deadline=2", 5 * time.Second, Params{}, "start-drain-delay+delay+period (6s)"},
		{"default deadline too short for the delay", "delay=400", 0, Params{}, `deadline="5m0s": the default is shorter`},
		{"repeated", "delay=1&delay=2", 0, Params{}, "given more than once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseParams(q, def, c.startDelay)
			if c.wantErr == "" {
				if err != nil || got != c.want {
					t.Errorf("ParseParams(%q) got %+v, %v; want %+v", c.query, got, err, c.want)
				}
				return
			}
			var pe *ParamError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseParams(%q) error got %v, want a *ParamError containing %q", c.query, err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("reason is not one line: %q", err)
			}
		})
	}
}
