package main

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
)

func TestWaitsConfig(t *testing.T) {
	t.Run("defaults: auto within 1s..7.5s, fixed 5s as its fallback, no conditions", func(t *testing.T) {
		clearEnv(t)
		c, err := LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		q := c.drainQuiet(nil)
		if !c.drainAuto || q == nil || q.Window != time.Second || q.Min != 0 || q.Max != 7500*time.Millisecond || q.Fallback != 5*time.Second || len(c.readinessConditions(nil)) != 0 {
			t.Errorf("got auto=%v quiet=%+v conditions=%d, want auto, 1s window, max 7.5s, fallback 5s, and none", c.drainAuto, q, len(c.readinessConditions(nil)))
		}
	})
	t.Run("fixed 5s", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ENVOY_LIFECYCLE_DRAIN_DELAY", "5s")
		c, err := LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		if c.drainAuto || c.drainDelay != 5*time.Second || c.drainQuiet(nil) != nil {
			t.Errorf("got auto=%v delay=%v, want fixed 5s", c.drainAuto, c.drainDelay)
		}
	})
	t.Run("auto with an unbounded drain: the delay still bounded", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ENVOY_LIFECYCLE_DRAIN_DEADLINE", "0")
		c, err := LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		if q := c.drainQuiet(nil); q == nil || q.Max != 7500*time.Millisecond {
			t.Errorf("got %+v, want auto bounded at 7.5s", q)
		}
	})
	t.Run("auto", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ENVOY_LIFECYCLE_DRAIN_DELAY", " Auto ")
		c, err := LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		q := c.drainQuiet(nil)
		if q == nil || q.Window != time.Second || q.Min != 0 || q.Max != 7500*time.Millisecond || q.Fallback != 5*time.Second || c.drainDelay != 0 {
			t.Errorf("auto got %+v, delay %v; want window 1s, max half of the 15s deadline, fallback 5s", q, c.drainDelay)
		}
	})
	t.Run("conditions", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("ENVOY_LIFECYCLE_READY_CLUSTERS", " web, outbound|8080||db.ns.svc.cluster.local ,")
		t.Setenv("ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL", "true")
		t.Setenv("ENVOY_LIFECYCLE_READY_NO_WARMING", "true")
		t.Setenv("ENVOY_LIFECYCLE_READY_NO_WARMING_TIMEOUT", "5s")
		t.Setenv("ENVOY_LIFECYCLE_READY_URL", "http://127.0.0.1:15001/healthz")
		c, err := LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, cond := range c.readinessConditions(nil) {
			got = append(got, cond.Name+" "+cond.Deadline.String()+" fatal="+map[bool]string{true: "yes", false: "no"}[cond.Fatal])
		}
		want := []string{"clusters web,outbound|8080||db.ns.svc.cluster.local 30s fatal=yes",
			"nothing warming 5s fatal=no", "GET http://127.0.0.1:15001/healthz 30s fatal=no"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("conditions got %q, want %q", got, want)
		}
	})
	errs := []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "soon"}, "ENVOY_LIFECYCLE_DRAIN_DELAY"},
		{map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "-1s"}, "ENVOY_LIFECYCLE_DRAIN_DELAY"},
		{map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "20s"}, "ENVOY_LIFECYCLE_DRAIN_DELAY"}, // past the deadline
		{map[string]string{"ENVOY_LIFECYCLE_DRAIN_QUIET": "0s"}, "ENVOY_LIFECYCLE_DRAIN_QUIET"},
		{map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "auto", "ENVOY_LIFECYCLE_DRAIN_DELAY_MAX": "15s"}, "ENVOY_LIFECYCLE_DRAIN_DELAY_MAX"},
		{map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "auto", "ENVOY_LIFECYCLE_DRAIN_DELAY_MIN": "10s"}, "ENVOY_LIFECYCLE_DRAIN_DELAY_MIN"},
		{map[string]string{"ENVOY_LIFECYCLE_READY_CLUSTERS": "web,db,web"}, "ENVOY_LIFECYCLE_READY_CLUSTERS"},
		{map[string]string{"ENVOY_LIFECYCLE_READY_URL": "127.0.0.1:15001/healthz"}, "ENVOY_LIFECYCLE_READY_URL"},
		{map[string]string{"ENVOY_LIFECYCLE_READY_URL_TIMEOUT": "0s"}, "ENVOY_LIFECYCLE_READY_URL_TIMEOUT"},
		{map[string]string{"ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL": "maybe"}, "ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL"},
	}
	for _, tc := range errs {
		t.Run("error "+tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Name != tc.name {
				t.Fatalf("%v: error got %v, want a *ConfigError naming %s", tc.env, err, tc.name)
			}
			msg := err.Error()
			if !strings.Contains(msg, "valid:") || strings.Contains(msg, "\n") || !strings.Contains(msg, `"`+tc.env[tc.name]+`"`) {
				t.Errorf("error got %q, want one line echoing the value and saying what is valid", msg)
			}
		})
	}
}

// TestAutoDrainDelay: with DRAIN_DELAY=auto a pod that never had traffic
// drains at once, and one that had some drains once it has been quiet for
// DRAIN_QUIET.
func TestAutoDrainDelay(t *testing.T) {
	t.Parallel()
	for _, used := range []bool{false, true} {
		name := map[bool]string{false: "never had traffic", true: "traffic stopped"}[used]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{})
			if used {
				touchListener(t, e)
			}
			p := start(t, drainEnv(e, "ENVOY_LIFECYCLE_DRAIN_DELAY=auto", "ENVOY_LIFECYCLE_DRAIN_QUIET=300ms"), app("echo-signals")...)
			p.ExpectLine("ready")
			p.Signal(syscall.SIGTERM)
			p.ExpectLine("TERM")
			p.Stdin.Close()
			if got := p.ExitCode(); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
			log := p.Stderr.String()
			want := map[bool]string{false: "reason=idle", true: "reason=quiet"}[used]
			if !strings.Contains(log, "endpoint delay over: mode=auto "+want) {
				t.Errorf("want the delay to end with %s:\n%s", want, log)
			}
			// The delay samples the arrival counters (GET /stats) before the drain.
			want = "POST /healthcheck/fail,GET /stats,POST /drain_listeners?graceful&inboundonly,GET /stats,POST /quitquitquit"
			if got := strings.Join(order(e.Requests()), ","); got != want {
				t.Errorf("admin calls got %q, want %q", got, want)
			}
		})
	}
}

// TestReadyClusterNeverHealthy: a named cluster that never gets a healthy
// host stops the start when the condition is fatal, and is only logged when
// it is not.
func TestReadyClusterNeverHealthy(t *testing.T) {
	t.Parallel()
	for _, fatal := range []bool{true, false} {
		t.Run(map[bool]string{true: "fatal", false: "start anyway"}[fatal], func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{})
			if err := e.SetCluster("web", envoyfake.UpstreamHost{Address: "10.0.0.5:80", Flags: []string{envoyfake.FlagFailedActiveHC}}); err != nil {
				t.Fatal(err)
			}
			p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ENVOY_LIFECYCLE_READY_CLUSTERS=web",
				"ENVOY_LIFECYCLE_READY_CLUSTERS_TIMEOUT=300ms", "ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL=" + map[bool]string{true: "true", false: "false"}[fatal]},
				app("exit", "3")...)
			want := map[bool]int{true: 69, false: 3}[fatal]
			if got := p.ExitCode(); got != want {
				t.Errorf("exit code got %d, want %d\n%s", got, want, p.Stderr.String())
			}
			waitQuit(t, e.Quit(), "envoy")
			if log := p.Stderr.String(); !strings.Contains(log, "web: 0 of 1 hosts serving") {
				t.Errorf("the log does not say what was seen:\n%s", log)
			}
		})
	}
}

// TestReadyClusterBecomesHealthy: the app starts once the cluster has a
// healthy host, not before.
func TestReadyClusterBecomesHealthy(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ENVOY_LIFECYCLE_READY_CLUSTERS=web", "ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL=true"},
		app("echo-signals")...)
	envoytest.WaitRequests(t, e, "/clusters", 2) // missing twice: the app must not have started
	if l, ok := p.Line(0); ok {
		t.Fatalf("app printed %q before the cluster was healthy", l)
	}
	if err := e.SetCluster("web", envoyfake.UpstreamHost{Address: "10.0.0.5:80"}); err != nil {
		t.Fatal(err)
	}
	p.ExpectLine("ready")
	p.Stdin.Close()
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
}

// TestReadyURLBlackHole: a probe URL that never answers cannot hold the
// start past its deadline.
func TestReadyURLBlackHole(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0") // never accepted: the kernel's backlog holds the connections
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := envoytest.Start(t, envoyfake.Options{})
	bin(t) // built before the clock starts
	began := time.Now()
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ENVOY_LIFECYCLE_READY_URL=http://" + l.Addr().String() + "/healthz",
		"ENVOY_LIFECYCLE_REQUEST_TIMEOUT=100ms", "ENVOY_LIFECYCLE_READY_URL_TIMEOUT=500ms", "ENVOY_LIFECYCLE_READY_URL_FATAL=true"},
		app("exit", "0")...)
	if got := p.ExitCode(); got != 69 {
		t.Errorf("exit code got %d, want 69\n%s", got, p.Stderr.String())
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %v, want about the 500ms deadline", took)
	}
}
