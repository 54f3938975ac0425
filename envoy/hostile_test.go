package envoy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// statsServer answers /stats with body repeated until size bytes.
func statsServer(t *testing.T, line string, size int) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat(line, 64<<10/len(line)+1))
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk[:min(len(chunk), size-n)]); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// heapDuring runs f and returns the largest growth of the heap in use seen
// while it ran. The GC runs at 1% growth meanwhile, so the peak is what f
// keeps, not garbage waiting for the next cycle.
func heapDuring(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapInuse)
			select {
			case <-done:
				peak <- top
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	return max(<-peak, base) - base
}

// TestActiveConnectionsMemoryBound: an 8 MiB /stats answer of matching
// gauges is counted in bounded memory (the old parser kept every line:
// about 1 GB for 64 MiB).
func TestActiveConnectionsMemoryBound(t *testing.T) {
	const line = "listener.10.0.0.1_8080.downstream_cx_active: 1\n"
	const size = 8 << 20
	c := statsServer(t, line, size)
	var (
		sum     uint64
		matched int
		err     error
	)
	grew := heapDuring(func() {
		sum, matched, err = c.ActiveConnections(context.Background(), Selector{Include: regexp.MustCompile(`active$`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := size / len(line); matched != want || sum != uint64(want) {
		t.Errorf("got sum %d over %d stats, want %d over %d", sum, matched, want, want)
	}
	t.Logf("heap grew %d KiB while counting %d MiB", grew>>10, size>>20)
	if limit := uint64(1<<20 + raceSlack); grew > limit {
		t.Errorf("heap grew %d KiB, want under %d KiB (the old parser kept about 20 MiB)", grew>>10, limit>>10)
	}
}

// TestStatsKeepsOnlyMatching: an admin that ignores the filter and sends
// everything costs only what matches, and past the limits the error says
// the answer was too large, not that the admin is unreachable.
func TestStatsKeepsOnlyMatching(t *testing.T) {
	t.Parallel()
	c := statsServer(t, "cluster.x.upstream_rq_total: 7\nlistener.a_1.downstream_cx_total: 0\n", 1<<20)
	stats, err := c.Stats(context.Background(), StatsQuery{Filter: `^listener\.a_1\.downstream_cx_total$`})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Name != "listener.a_1.downstream_cx_total" {
			t.Fatalf("got stat %q the filter does not match", s.Name)
		}
	}

	many := statsServer(t, "listener.a_1.downstream_cx_total: 0\n", (maxKeptStats+1)*36)
	if _, err := many.Stats(context.Background(), StatsQuery{Filter: "downstream"}); !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnreachable) {
		t.Errorf("too many stats: got %v, want ErrTooLarge", err)
	}
	huge := statsServer(t, strings.Repeat("x", 32<<10)+"\n", maxStatsBody+10)
	_, _, err = huge.ActiveConnections(context.Background(), DefaultConnSelector())
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("oversized body: got %v, want ErrTooLarge saying too large", err)
	}
}

// TestImpossibleGaugeValues: negative, beyond-uint64 and underflowed
// (2^64-1) gauges are counted as 0 and logged, not skipped (which read as
// "stat missing") or summed (which held every drain to its deadline).
func TestImpossibleGaugeValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body  string
		wantSum     uint64
		wantMatched int
	}{
		{"underflow", "listener.a_1.downstream_cx_active: 18446744073709551615\n", 0, 1},
		{"negative", "listener.a_1.downstream_cx_active: -3\n", 0, 1},
		{"beyond uint64", "listener.a_1.downstream_cx_active: 18446744073709551616\n", 0, 1},
		{"2^63", "listener.a_1.downstream_cx_active: 9223372036854775808\n", 0, 1},
		{"beside a real one", "listener.a_1.downstream_cx_active: 18446744073709551615\nlistener.b_2.downstream_cx_active: 2\n", 2, 2},
		{"text is still skipped", "listener.a_1.downstream_cx_active: \"x\"\n", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs strings.Builder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) }))
			defer srv.Close()
			c, err := New(srv.URL, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs})})
			if err != nil {
				t.Fatal(err)
			}
			sum, matched, err := c.ActiveConnections(context.Background(), DefaultConnSelector())
			if err != nil || sum != tc.wantSum || matched != tc.wantMatched {
				t.Fatalf("got (%d, %d, %v), want (%d, %d, nil)", sum, matched, err, tc.wantSum, tc.wantMatched)
			}
			logged := strings.Contains(logs.String(), "impossible stat value")
			if want := tc.wantMatched > 0; logged != want {
				t.Errorf("impossible value logged %v, want %v:\n%s", logged, want, logs.String())
			}
		})
	}
}

func ExampleRedact() {
	fmt.Println(Redact("http://user:pass@127.0.0.1:15020/quit?token=abc&x=1"))
	// Output: http://REDACTED@127.0.0.1:15020/quit?token=REDACTED&x=1
}
