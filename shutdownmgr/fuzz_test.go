package shutdownmgr

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5", "2.5", "500ms", "1m30s", "", "-1", "NaN", "Inf", "1e300", "9223372036.854775807",
		"86400", "86400.000001", "25h", "9999999999h", "0x10", "5 s", ".5", "1_0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && (d < 0 || d > MaxDuration) {
			t.Fatalf("ParseDuration(%q) got %s, outside 0..%s", s, d, MaxDuration)
		}
		if err != nil && d != 0 {
			t.Fatalf("ParseDuration(%q) got %s with error %v", s, d, err)
		}
	})
}

func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"", "delay=1&period=1&deadline=5", "period=1ns", "deadline=9223372036", "delay=2&delay=3",
		"deadline=0", "period=0", "deadline=%zz", "delay=9223372036.854775807", "deadline=3600&period=0.01"} {
		f.Add(s, int64(5*time.Second))
	}
	def := Params{Delay: 5 * time.Second, Period: time.Second}
	f.Fuzz(func(t *testing.T, raw string, defDeadline int64) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		d := def
		d.Deadline = time.Duration(defDeadline) % (MaxDuration + 1)
		if d.Deadline < 0 {
			d.Deadline = -d.Deadline
		}
		for _, drain := range []bool{true, false} {
			var p Params
			if drain {
				p, err = ParseParams(q, d, time.Second)
			} else {
				p, err = parseWaitParams(q, d)
			}
			if err != nil {
				var pe *ParamError
				if !errors.As(err, &pe) || strings.ContainsAny(pe.Error(), "\n\r") {
					t.Fatalf("query %q: error %v is not a one-line *ParamError", raw, err)
				}
				continue
			}
			limit := max(d.Deadline, MaxQueryDeadline)
			switch {
			case p.Period <= 0, p.Delay < 0, p.Deadline < 0:
				t.Fatalf("query %q: got %+v, want positive period and no negative duration", raw, p)
			case q.Has("period") && p.Period < MinPeriod:
				t.Fatalf("query %q: period %s below %s", raw, p.Period, MinPeriod)
			case q.Has("deadline") && p.Deadline > limit, q.Has("delay") && p.Delay > limit:
				t.Fatalf("query %q: got %+v beyond the limit %s", raw, p, limit)
			case drain && q.Has("deadline") && p.Deadline < time.Second+p.Delay+p.Period:
				t.Fatalf("query %q: deadline %s shorter than start+delay+period", raw, p.Deadline)
			}
		}
	})
}

func FuzzMistypedControl(f *testing.F) {
	for _, s := range []string{"/shutdown", "/shutdown/", "/Shutdown", "/drain/", "//drain", "/lb", "/", "", "/healthz", "/waitz/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := mistypedControl(p)
		if c == "" {
			return
		}
		if !strings.HasPrefix(strings.ToLower(strings.TrimLeft(p, "/")), c[1:]) {
			t.Fatalf("mistypedControl(%q) got %q, which %q does not start with", p, c, p)
		}
	})
}
