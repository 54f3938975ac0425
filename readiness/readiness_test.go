package readiness

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
)

// testTimeout bounds every wait in these tests; nothing should come near it.
const testTimeout = 10 * time.Second

// startEnvoy starts a fake Envoy, proxying to upstream if given, and a
// client for its admin.
func startEnvoy(t *testing.T, upstream string) (*envoyfake.Envoy, *envoy.Client) {
	t.Helper()
	e := envoytest.Start(t, envoyfake.Options{Upstream: upstream})
	return e, envoytest.Client(t, e.AdminURL())
}

func mustSet(t *testing.T, e *envoyfake.Envoy, name string, hosts ...envoyfake.UpstreamHost) {
	t.Helper()
	if err := e.SetCluster(name, hosts...); err != nil {
		t.Fatal(err)
	}
}

var (
	healthy = envoyfake.UpstreamHost{Address: "10.0.0.5:8080"}
	failing = envoyfake.UpstreamHost{Address: "10.0.0.6:8080", Flags: []string{envoyfake.FlagFailedActiveHC}}
)

// afterRequests runs f once the fake has answered n requests to path, so a
// test changes the fake between two checks, never on a timer.
func afterRequests(t *testing.T, e *envoyfake.Envoy, path string, n int, f func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	go func() {
		defer cancel()
		seen := 0
		if _, err := e.WaitRequest(ctx, func(r envoyfake.Request) bool {
			if r.Path == path {
				seen++
			}
			return seen >= n
		}); err == nil {
			f()
		}
	}()
}

func TestClustersServing(t *testing.T) {
	t.Parallel()
	e, admin := startEnvoy(t, "")
	mustSet(t, e, "web", failing, healthy)
	mustSet(t, e, "db", failing)
	check := ClustersServing(admin, []string{"web", "db", "cache"})
	ok, detail, err := check(context.Background())
	want := "web: 1 of 2 hosts serving; db: 0 of 1 hosts serving; cache: not active (unknown or warming)"
	if ok || err != nil || detail != want {
		t.Errorf("check got (%v, %q, %v), want (false, %q, nil)", ok, detail, err, want)
	}
	mustSet(t, e, "db", healthy)
	mustSet(t, e, "cache", envoyfake.UpstreamHost{Address: "10.0.0.7:6379", Flags: []string{envoyfake.FlagDegradedActiveHC}})
	if ok, detail, err := check(context.Background()); !ok || err != nil {
		t.Errorf("check got (%v, %q, %v), want it met", ok, detail, err)
	}
}

func TestWaitClusterBecomesHealthy(t *testing.T) {
	t.Parallel()
	e, admin := startEnvoy(t, "")
	mustSet(t, e, "web", failing)
	afterRequests(t, e, "/clusters", 2, func() { mustSet(t, e, "web", failing, healthy) })
	w := Waiter{Period: 10 * time.Millisecond, Conditions: []Condition{
		{Name: "clusters", Check: ClustersServing(admin, []string{"web"}), Deadline: testTimeout, Fatal: true},
	}}
	res, err := w.Wait(context.Background())
	if err != nil || !res[0].Met || res[0].Checks < 3 {
		t.Errorf("Wait got %+v, %v; want met after at least 3 checks", res, err)
	}
}

func TestWaitClusterNeverHealthy(t *testing.T) {
	t.Parallel()
	for _, fatal := range []bool{true, false} {
		t.Run(map[bool]string{true: "fatal", false: "start anyway"}[fatal], func(t *testing.T) {
			t.Parallel()
			e, admin := startEnvoy(t, "")
			mustSet(t, e, "web", failing)
			const deadline = 200 * time.Millisecond
			w := Waiter{Period: 10 * time.Millisecond, Conditions: []Condition{
				{Name: "clusters", Check: ClustersServing(admin, []string{"web"}), Deadline: deadline, Fatal: fatal},
			}}
			res, err := w.Wait(context.Background())
			if fatal != errors.Is(err, ErrNotMet) || !fatal && err != nil {
				t.Errorf("Wait error got %v, want ErrNotMet %v", err, fatal)
			}
			if fatal && (err == nil || !strings.Contains(err.Error(), "clusters after 200ms: web: 0 of 1 hosts serving")) {
				t.Errorf("Wait error got %v, want it to name the condition and what was seen", err)
			}
			r := res[0]
			if r.Met || r.Took < deadline || r.Took > testTimeout || r.Checks < 2 {
				t.Errorf("result got %+v, want not met after the %v deadline", r, deadline)
			}
			if want := map[bool]string{true: "not met (fatal)", false: "not met (start anyway)"}[fatal]; r.State() != want {
				t.Errorf("State got %q, want %q", r.State(), want)
			}
		})
	}
}

func TestWaitNothingWarming(t *testing.T) {
	t.Parallel()
	e, admin := startEnvoy(t, "")
	e.SetWarming(1, 1)
	afterRequests(t, e, "/stats", 2, func() { e.SetWarming(0, 0) })
	w := Waiter{Period: 10 * time.Millisecond, Conditions: []Condition{
		{Name: "warming", Check: NothingWarming(admin), Deadline: testTimeout, Fatal: true},
	}}
	res, err := w.Wait(context.Background())
	if err != nil || !res[0].Met || res[0].Checks < 3 || res[0].Detail != "warming clusters=0 listeners=0 workers_started=true" {
		t.Errorf("Wait got %+v, %v; want met after at least 3 checks", res, err)
	}
}

// blackHole is an address whose connections are accepted by the kernel and
// never answered.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String() // never Accept: the backlog completes the handshake
}

func TestHTTPGetThroughTheProxy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	status := http.StatusServiceUnavailable
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/ok", http.StatusFound)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(up.Close)
	e, _ := startEnvoy(t, up.Listener.Addr().String())
	url := "http://" + e.ListenerAddr() + "/dep"

	check := HTTPGet(url, time.Second)
	if ok, detail, err := check(context.Background()); ok || err != nil || detail != "GET "+url+": status 503" {
		t.Errorf("503: check got (%v, %q, %v)", ok, detail, err)
	}
	if ok, _, err := HTTPGet("http://"+e.ListenerAddr()+"/moved", time.Second)(context.Background()); ok || err != nil {
		t.Errorf("302: check got (%v, %v), want not met (redirects are not followed)", ok, err)
	}
	mu.Lock()
	status = http.StatusNoContent
	mu.Unlock()
	w := Waiter{Period: 10 * time.Millisecond, Conditions: []Condition{{Name: "probe", Check: check, Deadline: testTimeout, Fatal: true}}}
	if res, err := w.Wait(context.Background()); err != nil || !res[0].Met {
		t.Errorf("204: Wait got %+v, %v; want met", res, err)
	}
}

func TestHTTPGetBlackHole(t *testing.T) {
	t.Parallel()
	const deadline = 400 * time.Millisecond
	w := Waiter{Period: 10 * time.Millisecond, Conditions: []Condition{
		{Name: "probe", Check: HTTPGet("http://"+blackHole(t)+"/", 100*time.Millisecond), Deadline: deadline, Fatal: true},
	}}
	start := time.Now()
	res, err := w.Wait(context.Background())
	took := time.Since(start)
	if !errors.Is(err, ErrNotMet) || res[0].Met {
		t.Fatalf("Wait got %+v, %v; want ErrNotMet", res, err)
	}
	if res[0].Err == nil || res[0].Checks < 2 {
		t.Errorf("result got %+v, want timed-out attempts with their error", res[0])
	}
	if took < deadline || took > 3*time.Second {
		t.Errorf("Wait took %v, want just past the %v deadline", took, deadline)
	}
}

func TestWaitFatalStopsTheOthers(t *testing.T) {
	t.Parallel()
	never := func(context.Context) (bool, string, error) { return false, "no", nil }
	w := Waiter{Period: 10 * time.Millisecond, Conditions: []Condition{
		{Name: "slow", Check: never, Deadline: time.Hour},
		{Name: "quick", Check: never, Deadline: 50 * time.Millisecond, Fatal: true},
	}}
	start := time.Now()
	res, err := w.Wait(context.Background())
	if !errors.Is(err, ErrNotMet) || !strings.Contains(err.Error(), "quick") {
		t.Errorf("Wait error got %v, want ErrNotMet naming quick", err)
	}
	if took := time.Since(start); took > testTimeout {
		t.Errorf("Wait took %v, want the fatal failure to stop the hour-long condition", took)
	}
	if res[0].Name != "slow" || res[1].Name != "quick" {
		t.Errorf("results out of order: %+v", res)
	}
}

func TestWaitCancelledAndBadConditions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	never := func(context.Context) (bool, string, error) { return false, "", nil }
	w := Waiter{Conditions: []Condition{{Name: "x", Check: never, Deadline: time.Hour, Fatal: true}}}
	if _, err := w.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context got %v, want context.Canceled", err)
	}
	for _, c := range []Condition{{Name: "no deadline", Check: never}, {Name: "no check", Deadline: time.Second}} {
		if _, err := (&Waiter{Conditions: []Condition{c}}).Wait(context.Background()); err == nil || errors.Is(err, ErrNotMet) {
			t.Errorf("%s: Wait got %v, want a setup error", c.Name, err)
		}
	}
}

func TestOnce(t *testing.T) {
	t.Parallel()
	e, admin := startEnvoy(t, "")
	mustSet(t, e, "web", healthy)
	e.SetWarming(1, 0)
	res := Once(context.Background(), []Condition{
		{Name: "clusters", Check: ClustersServing(admin, []string{"web"}), Deadline: time.Second, Fatal: true},
		{Name: "warming", Check: NothingWarming(admin), Deadline: time.Second},
	}, time.Second)
	if !res[0].Met || res[0].State() != "met" || res[1].Met || res[1].Detail != "warming clusters=1 listeners=0 workers_started=true" {
		t.Errorf("Once got %+v", res)
	}
}
