package quit

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

// TestSlowGenericEndpointsLeaveTheProxyItsQuit: two generic endpoints that
// never answer must not use up the budget; Envoy still gets /quitquitquit.
func TestSlowGenericEndpointsLeaveTheProxyItsQuit(t *testing.T) {
	t.Parallel()
	e := startFake(t)
	hang := make(chan struct{})
	defer close(hang)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer slow.CloseClientConnections()
	p := Policy{
		Generic: []string{slow.URL + "/a", slow.URL + "/b"},
		Envoy:   envoytest.Client(t, e.AdminURL()),
		Timeout: 3 * time.Second, // each generic call alone could eat the budget
		Retries: 2,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	rep := p.Stop(ctx, 0)
	if rep.Method != "envoy" || rep.Err != nil {
		t.Errorf("report got %+v, want envoy told to quit", rep)
	}
	if got := envoytest.Posts(e.Requests(), "/quitquitquit"); got != 1 {
		t.Errorf("envoy quits got %d, want 1", got)
	}
	if took := time.Since(start); took > 3500*time.Millisecond {
		t.Errorf("stop took %s, want the generic calls cut at half of the 4s budget", took)
	}
}

// TestGenericAndKillURLSecretsNotLogged: passwords and tokens in the quit
// URLs never reach the logs, whether the call works or fails.
func TestGenericAndKillURLSecretsNotLogged(t *testing.T) {
	t.Parallel()
	e := startFake(t)
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ok.Close()
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	var logs testproc.Buffer
	host := strings.TrimPrefix(ok.URL, "http://")
	p := Policy{
		Generic: []string{
			"http://user:s3cr3t@" + host + "/quit?token=s3cr3t",
			"http://user:s3cr3t@" + refused + "/quit",
			"http://user:s3cr3t@[::1",
		},
		KillURL: "http://user:s3cr3t@" + refused + "/kill?api_key=s3cr3t",
		Envoy:   envoytest.Client(t, e.AdminURL()),
		Logger:  hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace, JSONFormat: true}),
	}
	rep := p.Stop(context.Background(), 0)
	if rep.Err == nil {
		t.Fatal("got no error from a refused kill URL")
	}
	for what, s := range map[string]string{"logs": logs.String(), "error": rep.Err.Error()} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("%s leak the secret:\n%s", what, s)
		}
	}
	if !strings.Contains(logs.String(), "REDACTED@"+host) {
		t.Errorf("logs do not name the redacted endpoint:\n%s", logs.String())
	}
}

// TestResetWithoutExitIsNotStopped: a quit request cut off without an answer
// counts as stopped only when the proxy is then seen to go away.
func TestResetWithoutExitIsNotStopped(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Hang up on every request and keep listening: not quitting.
			http.ReadRequest(bufio.NewReader(c))
			c.Close()
		}
	}()
	p := Policy{Envoy: envoytest.Client(t, "http://"+ln.Addr().String()), Verify: 300 * time.Millisecond}
	rep := p.Stop(context.Background(), 0)
	if rep.Err == nil || rep.Gone {
		t.Errorf("report got %+v, want an error and not gone", rep)
	}
	// Without Verify the check still runs, bounded by resetVerify.
	p.Verify = 0
	start := time.Now()
	rep = p.Stop(context.Background(), 0)
	if rep.Err == nil || rep.Gone {
		t.Errorf("without Verify, report got %+v, want an error and not gone", rep)
	}
	if took := time.Since(start); took > resetVerify+2*time.Second {
		t.Errorf("without Verify, stop took %s, want about %s", took, resetVerify)
	}
}

// TestDrainStatsTooLarge: an admin whose /stats answer is over the client's
// cap ends the drain at the first poll with its own reason, not "admin
// unreachable" after retries.
func TestDrainStatsTooLarge(t *testing.T) {
	t.Parallel()
	var statsCalls atomic.Int32
	line := strings.Repeat("x", 1<<10) + "\n"
	chunk := []byte(strings.Repeat(line, 64))
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats" {
			return // 200 to /healthcheck/fail and /drain_listeners
		}
		statsCalls.Add(1)
		for n := 0; n <= 64<<20; n += len(chunk) { // one chunk past 64 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(admin.Close)
	c, err := envoy.New(admin.URL, envoy.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := Drain{Admin: c, Period: time.Millisecond, Deadline: time.Minute}
	res := d.Run(context.Background(), true)
	if res.Reason != ReasonStatsTooLarge || statsCalls.Load() != 1 {
		t.Errorf("got reason %q after %d /stats calls, want %q after 1", res.Reason, statsCalls.Load(), ReasonStatsTooLarge)
	}
}
