package quit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

func init() {
	// pilot-agent, played by TestPkillFallback: print "ready", exit 0 on
	// SIGINT.
	testproc.Register("pilot-agent", func([]string) int {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT)
		fmt.Println("ready")
		<-ch
		return 0
	})
}

func TestMain(m *testing.M) { testproc.Main(m) }

func startFake(t *testing.T) *envoyfake.Envoy {
	t.Helper()
	return envoytest.Start(t, envoyfake.Options{})
}

func TestStopPolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		policy     func(e *envoyfake.Envoy, a *envoyfake.PilotAgent) Policy
		code       int
		wantMethod string
		envoyQuits int
		agentQuits int
		wantErr    bool
	}{
		{"envoy only", func(e *envoyfake.Envoy, _ *envoyfake.PilotAgent) Policy {
			return Policy{Envoy: envoytest.Client(t, e.AdminURL())}
		}, 0, "envoy", 1, 0, false},
		{"istio wins over envoy", func(e *envoyfake.Envoy, a *envoyfake.PilotAgent) Policy {
			return Policy{Envoy: envoytest.Client(t, e.AdminURL()), Istio: envoytest.Client(t, a.URL())}
		}, 1, "istio", 0, 1, false},
		{"never", func(e *envoyfake.Envoy, _ *envoyfake.PilotAgent) Policy {
			return Policy{Envoy: envoytest.Client(t, e.AdminURL()), Never: true}
		}, 0, "", 0, 0, false},
		{"never on failure, failed", func(e *envoyfake.Envoy, a *envoyfake.PilotAgent) Policy {
			return Policy{Istio: envoytest.Client(t, a.URL()), NeverOnFailure: true}
		}, 2, "", 0, 0, false},
		{"never on failure, succeeded", func(e *envoyfake.Envoy, a *envoyfake.PilotAgent) Policy {
			return Policy{Istio: envoytest.Client(t, a.URL()), NeverOnFailure: true}
		}, 0, "istio", 0, 1, false},
		{"kill url replaces the admin quit", func(e *envoyfake.Envoy, _ *envoyfake.PilotAgent) Policy {
			return Policy{Envoy: envoytest.Client(t, e.AdminURL()), KillURL: e.AdminURL() + "/quitquitquit"}
		}, 0, "envoy", 1, 0, false},
		{"istio unreachable falls back to envoy", func(e *envoyfake.Envoy, _ *envoyfake.PilotAgent) Policy {
			return Policy{Envoy: envoytest.Client(t, e.AdminURL()), Istio: envoytest.Client(t, "http://127.0.0.1:1"), Retries: 2}
		}, 0, "envoy", 1, 0, false},
		{"non-local envoy is not told", func(e *envoyfake.Envoy, _ *envoyfake.PilotAgent) Policy {
			return Policy{Envoy: envoytest.Client(t, "http://192.0.2.1:15000")}
		}, 0, "", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := startFake(t)
			a, err := envoyfake.StartPilotAgent(e, envoyfake.AgentOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			p := c.policy(e, a)
			rep := p.Stop(context.Background(), c.code)
			if rep.Method != c.wantMethod {
				t.Errorf("method got %q, want %q", rep.Method, c.wantMethod)
			}
			if (rep.Err != nil) != c.wantErr {
				t.Errorf("error got %v, want error %v", rep.Err, c.wantErr)
			}
			if got := envoytest.Posts(e.Requests(), "/quitquitquit"); got != c.envoyQuits {
				t.Errorf("envoy quits got %d, want %d", got, c.envoyQuits)
			}
			if got := envoytest.Posts(a.Requests(), "/quitquitquit"); got != c.agentQuits {
				t.Errorf("istio quits got %d, want %d", got, c.agentQuits)
			}
		})
	}
}

func TestGenericEndpointsFirstAndStatusIgnored(t *testing.T) {
	t.Parallel()
	e := startFake(t)
	var posts, others atomic.Int32
	gen := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			others.Add(1)
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer gen.Close()
	p := Policy{Generic: []string{gen.URL}, Envoy: envoytest.Client(t, e.AdminURL()), Retries: 3}
	rep := p.Stop(context.Background(), 0)
	// A 500 from a generic endpoint is retried, then logged; it is not an
	// error and does not stop Envoy from being told to quit.
	if posts.Load() != 3 || others.Load() != 0 {
		t.Errorf("generic calls got %d POST and %d other, want 3 POSTs", posts.Load(), others.Load())
	}
	if rep.Method != "envoy" || rep.Err != nil {
		t.Errorf("report got %+v, want envoy and no error", rep)
	}
}

func TestGenericOnlySkipsTheProxy(t *testing.T) {
	t.Parallel()
	e := startFake(t)
	var calls atomic.Int32
	gen := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer gen.Close()
	p := Policy{Generic: []string{gen.URL}, GenericOnly: true, Envoy: envoytest.Client(t, e.AdminURL())}
	if p.WillStop(0) {
		t.Error("WillStop got true with GenericOnly")
	}
	p.Stop(context.Background(), 0)
	if calls.Load() != 1 || envoytest.Posts(e.Requests(), "/quitquitquit") != 0 {
		t.Errorf("generic calls %d, envoy quits %d; want 1 and 0", calls.Load(), envoytest.Posts(e.Requests(), "/quitquitquit"))
	}
}

func TestKillURLIsTriedRetriesTimes(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	p := Policy{KillURL: srv.URL + "/quitquitquit", Retries: 3}
	rep := p.Stop(context.Background(), 0)
	if calls.Load() != 3 || rep.Err == nil {
		t.Errorf("calls got %d, err %v; want exactly 3 attempts and an error", calls.Load(), rep.Err)
	}
}

func TestRetryOn5xxThenGiveUp(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	p := Policy{Envoy: envoytest.Client(t, srv.URL), Retries: 3}
	rep := p.Stop(context.Background(), 0)
	if calls.Load() != 3 || rep.Err == nil {
		t.Errorf("calls got %d, err %v; want 3 attempts and an error", calls.Load(), rep.Err)
	}
}

func TestVerifySeesTheProxyGo(t *testing.T) {
	t.Parallel()
	e := startFake(t)
	p := Policy{Envoy: envoytest.Client(t, e.AdminURL()), Verify: 5 * time.Second}
	if rep := p.Stop(context.Background(), 0); !rep.Gone {
		t.Errorf("report got %+v, want the proxy seen gone", rep)
	}
}

// TestPkillFallback signals a real process named pilot-agent, found under
// /proc, with SIGINT.
func TestPkillFallback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	agent := filepath.Join(dir, "pilot-agent")
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(agent, self, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := testproc.Argv("pilot-agent")
	cmd := exec.Command(agent, argv[1:]...)
	cmd.Env = testproc.Env()
	proc := testproc.StartCmd(t, cmd)
	proc.ExpectLine("ready")
	p := Policy{Pkill: true}
	rep := p.Stop(context.Background(), 0)
	if rep.Method != "pkill" {
		t.Fatalf("method got %q, want pkill", rep.Method)
	}
	if code := proc.ExitCode(); code != 0 {
		t.Errorf("pilot-agent exit got %d, want 0 after SIGINT", code)
	}
}

func TestSignalByNameIgnoresOthers(t *testing.T) {
	t.Parallel()
	n, err := signalByName("/proc", "no-such-process-el", syscall.SIGINT)
	if err != nil || n != 0 {
		t.Errorf("got %d, %v; want 0, nil", n, err)
	}
}

// TestQuitAnsweredByAHangUp: a proxy that closes the connection right after
// reading the quit request is quitting, not failing (envoy-admin.md §2.7).
func TestQuitAnsweredByAHangUp(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			calls.Add(1)
			// Read the whole request, then hang up without answering, and
			// stop listening, as an exiting pilot-agent does.
			http.ReadRequest(bufio.NewReader(c))
			c.Close()
			ln.Close()
		}
	}()
	p := Policy{Istio: envoytest.Client(t, "http://"+ln.Addr().String()), Retries: 3, Verify: 5 * time.Second}
	rep := p.Stop(context.Background(), 0)
	if rep.Err != nil || rep.Method != "istio" || !rep.Gone {
		t.Errorf("report got %+v, want istio, no error, gone", rep)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("quit attempts got %d, want 1 (a hang-up is not retried)", n)
	}
}
