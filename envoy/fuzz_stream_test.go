package envoy

import (
	"bytes"
	"math"
	"strconv"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func FuzzGaugeValue(f *testing.F) {
	for _, s := range []string{"0", "1", "-1", "-", "", "18446744073709551615", "18446744073709551616", "9223372036854775807",
		"9223372036854775808", "1.5", "1e3", "\"x\"", "P0(1,1)", "00042", "-0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, impossible, ok := gaugeValue(b)
		want, err := strconv.ParseUint(string(b), 10, 64)
		switch {
		case err == nil:
			if !ok || v != want || impossible != (want >= gaugeLimit) {
				t.Fatalf("gaugeValue(%q) got (%d, %v, %v), want (%d, %v, true)", b, v, impossible, ok, want, want >= gaugeLimit)
			}
		case ok && !impossible:
			t.Fatalf("gaugeValue(%q) got possible value %d, but ParseUint says %v", b, v, err)
		case ok && v != 0 && impossible && !bytes.HasPrefix(b, []byte("-")) && len(b) < 20:
			t.Fatalf("gaugeValue(%q) got impossible %d for a short unsigned number", b, v)
		}
	})
}

func FuzzCountStats(f *testing.F) {
	addSeeds(f, "listener.a_1.downstream_cx_active: 18446744073709551615\n", "listener.a_1.downstream_cx_active: -1",
		"listener.a_1.downstream_cx_active: 99999999999999999999999")
	f.Fuzz(func(t *testing.T, b []byte) {
		sum, matched, err := countStats(bytes.NewReader(b), DefaultConnSelector(), hclog.NewNullLogger())
		if err != nil && (sum != 0 || matched != 0) {
			t.Fatalf("got (%d, %d) with error %v", sum, matched, err)
		}
		if err == nil && matched == 0 && sum != 0 {
			t.Fatalf("got sum %d with nothing matched", sum)
		}
		if sum == math.MaxUint64 && matched < 2 {
			t.Fatalf("got saturated sum from %d stats", matched)
		}
		// Only possible gauges (< 2^63) are summed.
		if matched == 1 && sum >= gaugeLimit {
			t.Fatalf("got sum %d from one stat, beyond any gauge", sum)
		}
	})
}
