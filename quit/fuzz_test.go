package quit

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	"envoy-lifecycle/envoy"
)

// FuzzQuietSamples compares two arbitrary /stats answers the way a Quiet
// wait compares its samples: the arrivals counted are exactly the sum of
// the rises (capped at the largest count, never wrapped to look quiet), and
// a fall or a vanished counter is a reset.
func FuzzQuietSamples(f *testing.F) {
	f.Add([]byte("listener.0.0.0.0_8080.downstream_cx_total: 5\n"), []byte("listener.0.0.0.0_8080.downstream_cx_total: 6\n"))
	f.Add([]byte("listener.0.0.0.0_8080.downstream_cx_total: 5\n"), []byte("listener.0.0.0.0_8080.downstream_cx_total: 4\n"))
	f.Add([]byte("http.in.downstream_rq_total: 1\n"), []byte(""))
	f.Add([]byte(""), []byte("http.in.downstream_rq_total: 18446744073709551615\n"))
	f.Add([]byte("http.a.downstream_rq_total: 3\nlistener.b.downstream_cx_total: 0\n"), []byte("http.a.downstream_rq_total: 3\nlistener.b.downstream_cx_total: 0\nhttp.admin.downstream_rq_total: 9\n"))
	f.Fuzz(func(t *testing.T, before, after []byte) {
		prev, ok := sample(before)
		if !ok {
			return
		}
		cur, ok := sample(after)
		if !ok {
			return
		}
		n, reset := arrivals(prev, cur)
		want := new(big.Int)
		wantReset := false
		for name, v := range cur {
			old := prev[name]
			if v > old {
				want.Add(want, new(big.Int).SetUint64(v-old))
			}
			if o, ok := prev[name]; ok && v < o {
				wantReset = true
			}
		}
		for name := range prev {
			if _, ok := cur[name]; !ok {
				wantReset = true
			}
		}
		if want.Cmp(new(big.Int).SetUint64(math.MaxUint64)) > 0 {
			want.SetUint64(math.MaxUint64)
		}
		if n != want.Uint64() || reset != wantReset {
			t.Fatalf("arrivals(%v, %v) = %d, %v; want %s, %v", prev, cur, n, reset, want, wantReset)
		}
		if anyArrived(cur) != (len(cur) > 0 && maxOf(cur) > 0) {
			t.Fatalf("anyArrived(%v) = %v", cur, anyArrived(cur))
		}
	})
}

// sample is what ArrivalSampler returns for a /stats answer.
func sample(b []byte) (Counters, bool) {
	stats, err := envoy.ParseStatsText(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	return envoy.Arrivals{}.Counters(stats), true
}

func maxOf(c Counters) uint64 {
	var m uint64
	for _, v := range c {
		m = max(m, v)
	}
	return m
}
