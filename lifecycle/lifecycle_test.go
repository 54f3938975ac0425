package lifecycle

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/readiness"
)

func TestMain(m *testing.M) {
	testproc.Register("record", record)
	testproc.Dispatch()
	// Every app a Runner starts is this binary running a child command, and
	// the Runner passes the environment on.
	os.Setenv(testproc.Marker, "1")
	os.Exit(testproc.Run(m))
}

// record FILE EXIT-ON: write "ready" to FILE once its handlers are in, then
// the name of each signal as it arrives; exit 0 after signal EXIT-ON
// ("none": never, it waits to be killed). Catching TERM keeps the app
// running on TERM, as an app with slow cleanup does.
func record(args []string) int {
	f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	fmt.Fprintln(f, "ready")
	giveUp := time.After(2 * time.Minute) // a broken test leaves nothing behind for long
	for {
		select {
		case s := <-ch:
			name := testproc.SignalName(s.(syscall.Signal))
			fmt.Fprintln(f, name)
			if name == args[1] {
				return 0
			}
		case <-giveUp:
			return 2
		}
	}
}

// run is one Runner under test: its signal channel, its app's record, its
// Envoy fake.
type run struct {
	t     *testing.T
	sigs  chan os.Signal
	file  string
	envoy *envoyfake.Envoy
	out   chan Outcome
}

// send delivers sig as signal.Notify would.
func (r *run) send(sig syscall.Signal) { r.sigs <- sig }

// waitRecord waits until the app's record is exactly lines.
func (r *run) waitRecord(lines ...string) {
	r.t.Helper()
	want := strings.Join(lines, "\n") + "\n"
	testproc.WaitFor(r.t, fmt.Sprintf("app record %q", want), func() bool {
		b, _ := os.ReadFile(r.file)
		return string(b) == want
	})
}

// waitRequest waits until Envoy saw a request to path.
func (r *run) waitRequest(path string) {
	r.t.Helper()
	envoytest.WaitRequests(r.t, r.envoy, path, 1)
}

// The state machine, driven through the signal channel with a real app and
// a real (fake) Envoy admin.
func TestRunner(t *testing.T) {
	t.Parallel()
	const unavailable, software = 69, 70
	cases := []struct {
		name   string
		fake   envoyfake.Options
		opts   func(o *Options) // after the defaults below
		exitOn string           // the app's EXIT-ON
		steps  func(r *run)
		code   int
		cause  Cause
		drain  quit.Reason // "": no drain ran
		record []string    // the app's final record; nil: never started
		// anyOrder: the record's lines may come in any order.
		anyOrder bool
	}{
		{
			name:   "drain then forward",
			exitOn: "TERM",
			steps:  func(r *run) { r.send(syscall.SIGTERM) },
			code:   0, cause: CauseAppExited, drain: quit.ReasonDrained,
			record: []string{"ready", "TERM"},
		},
		{
			name:   "second TERM mid-drain cuts it short; app gets TERM once",
			opts:   func(o *Options) { o.Drain.Delay = time.Hour },
			exitOn: "USR1",
			steps: func(r *run) {
				r.send(syscall.SIGTERM)
				r.waitRequest("/healthcheck/fail")
				r.send(syscall.SIGTERM)
				r.waitRecord("ready", "TERM")
				r.send(syscall.SIGUSR1)
			},
			code: 0, cause: CauseAppExited, drain: quit.ReasonCancelled,
			record: []string{"ready", "TERM", "USR1"},
		},
		{
			name:   "INT mid-drain cuts it short; app gets both",
			opts:   func(o *Options) { o.Drain.Delay = time.Hour },
			exitOn: "USR1",
			steps: func(r *run) {
				r.send(syscall.SIGTERM)
				r.waitRequest("/healthcheck/fail")
				r.send(syscall.SIGINT)
				// Both are pending at once, and the kernel delivers the lower
				// number first: either order is right.
				testproc.WaitFor(r.t, "TERM and INT in the record", func() bool {
					b, _ := os.ReadFile(r.file)
					return strings.Contains(string(b), "TERM\n") && strings.Contains(string(b), "INT\n")
				})
				r.send(syscall.SIGUSR1)
			},
			code: 0, cause: CauseAppExited, drain: quit.ReasonCancelled,
			record: []string{"ready", "TERM", "INT", "USR1"}, anyOrder: true,
		},
		{
			name:   "app exits mid-drain; drain not restarted",
			opts:   func(o *Options) { o.Drain.Delay = time.Hour },
			exitOn: "USR1",
			steps: func(r *run) {
				r.send(syscall.SIGTERM)
				r.waitRequest("/healthcheck/fail")
				r.send(syscall.SIGUSR1) // not a termination signal: forwarded at once
			},
			code: 0, cause: CauseAppExited, drain: quit.ReasonCancelled,
			record: []string{"ready", "USR1"},
		},
		{
			name:   "kill timer",
			opts:   func(o *Options) { o.Drain, o.StopTimeout = nil, 50*time.Millisecond },
			exitOn: "none",
			steps:  func(r *run) { r.send(syscall.SIGTERM) },
			code:   128 + int(syscall.SIGKILL), cause: CauseAppExited,
			record: []string{"ready", "TERM"},
		},
		{
			name:   "signal while waiting for envoy",
			fake:   envoyfake.Options{NeverLive: true},
			exitOn: "TERM",
			steps: func(r *run) {
				r.waitRequest("/server_info")
				// A harmless signal does not end the wait; had it, the code
				// would be 128+WINCH.
				r.send(syscall.SIGWINCH)
				r.send(syscall.SIGTERM)
			},
			code: 128 + int(syscall.SIGTERM), cause: CauseSignalWhileWaiting,
		},
		{
			name:   "envoy never live",
			fake:   envoyfake.Options{NeverLive: true},
			opts:   func(o *Options) { o.QuitWithoutEnvoy = 50 * time.Millisecond },
			exitOn: "TERM",
			steps:  func(r *run) {},
			code:   unavailable, cause: CauseEnvoyNotLive,
		},
		{
			name: "signal while checking readiness",
			opts: func(o *Options) {
				o.Readiness = []readiness.Condition{{Name: "clusters web", Check: readiness.ClustersServing(o.Admin, []string{"web"}), Deadline: time.Hour, Fatal: true}}
			},
			exitOn: "TERM",
			steps: func(r *run) {
				r.waitRequest("/clusters")
				r.send(syscall.SIGWINCH) // harmless: does not end the wait
				r.send(syscall.SIGTERM)
			},
			code: 128 + int(syscall.SIGTERM), cause: CauseSignalWhileWaiting,
		},
		{
			name: "fatal readiness condition not met",
			opts: func(o *Options) {
				o.Readiness = []readiness.Condition{{Name: "clusters web", Check: readiness.ClustersServing(o.Admin, []string{"web"}), Deadline: 50 * time.Millisecond, Fatal: true}}
			},
			exitOn: "TERM",
			steps:  func(r *run) {},
			code:   unavailable, cause: CauseNotReady,
		},
		{
			name: "readiness condition not met: start anyway",
			opts: func(o *Options) {
				o.Readiness = []readiness.Condition{{Name: "clusters web", Check: readiness.ClustersServing(o.Admin, []string{"web"}), Deadline: 50 * time.Millisecond}}
			},
			exitOn: "TERM",
			steps:  func(r *run) { r.send(syscall.SIGTERM) },
			code:   0, cause: CauseAppExited, drain: quit.ReasonDrained,
			record: []string{"ready", "TERM"},
		},
		{
			name:   "app not found",
			opts:   func(o *Options) { o.Command = filepath.Join(o.Command+".missing", "app") },
			exitOn: "TERM",
			steps:  func(r *run) {},
			code:   127, cause: CauseStartFailed,
		},
		{
			name:   "no command",
			opts:   func(o *Options) { o.Command = "" },
			exitOn: "TERM",
			steps:  func(r *run) {},
			code:   software, cause: CauseStartFailed,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, c.fake)
			logs := &testproc.Buffer{}
			log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			})
			admin, err := envoy.New(e.AdminURL(), envoy.Options{Timeout: time.Second, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			r := &run{t: t, sigs: make(chan os.Signal, 8), file: filepath.Join(t.TempDir(), "record"), envoy: e, out: make(chan Outcome, 1)}
			argv := testproc.Argv("record", r.file, c.exitOn)
			o := Options{
				Signals:     r.sigs,
				TermSignals: map[os.Signal]bool{syscall.SIGTERM: true},
				Admin:       admin,
				PollInitial: 5 * time.Millisecond, PollMax: 10 * time.Millisecond,
				Drain: &quit.Drain{Admin: admin, Period: 10 * time.Millisecond,
					Selector: envoy.DefaultConnSelector(), Logger: log.Named("drain")},
				Stop:               &quit.Policy{Envoy: admin, Timeout: time.Second, Retries: 1, Logger: log.Named("quit")},
				QuitRequestTimeout: time.Second, QuitRetries: 1,
				StopTimeout:    10 * time.Second,
				ShutdownBudget: ShutdownBudget(15*time.Second, 10*time.Second),
				Command:        argv[0], Args: argv[1:],
				Codes:  Codes{Unavailable: unavailable, Software: software},
				Logger: log,
			}
			if c.opts != nil {
				c.opts(&o)
			}
			runner, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			go func() { r.out <- runner.Run() }()
			if c.record != nil {
				r.waitRecord("ready")
			}
			c.steps(r)
			out := testproc.Recv(t, "the run's outcome", r.out)

			if out.Code != c.code || out.Cause != c.cause {
				t.Errorf("outcome got code %d cause %d (%s), want code %d cause %d", out.Code, out.Cause, out.Why, c.code, c.cause)
			}
			switch {
			case c.drain == "" && out.Drained != nil:
				t.Errorf("drain got %+v, want none", *out.Drained)
			case c.drain != "" && (out.Drained == nil || out.Drained.Reason != c.drain):
				t.Errorf("drain got %+v, want reason %q", out.Drained, c.drain)
			}
			// Every path stops the proxy.
			if out.Stopped == nil || out.Stopped.Method != "envoy" {
				t.Errorf("quit got %+v, want stopped via envoy", out.Stopped)
			}
			testproc.WaitClosed(t, "envoy to quit", e.Quit())
			if c.record == nil {
				if _, err := os.Stat(r.file); !os.IsNotExist(err) {
					t.Errorf("app record exists (%v), want the app never started", err)
				}
				return
			}
			b, _ := os.ReadFile(r.file)
			got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			want := c.record
			if c.anyOrder {
				want = slices.Sorted(slices.Values(want))
				slices.Sort(got)
			}
			if !slices.Equal(got, want) {
				t.Errorf("app record got %q, want %q", got, want)
			}
			// The kernel merges a signal sent twice in a row, so the app
			// cannot tell; the runner's own account can.
			for _, want := range c.record[1:] {
				sig, _ := testproc.SignalByName(want)
				n := 0
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.Contains(l, "signal forwarded: signal="+sig.String()+" ") || strings.Contains(l, fmt.Sprintf("signal forwarded: signal=%q ", sig.String())) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s forwarded %d times, want once", want, n)
				}
			}
		})
	}
}

// The budget is the drain, the stop timeout and QuitBudget, and unbounded
// when either of the first two is.
func TestShutdownBudget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		drain, stop, want time.Duration
	}{
		{15 * time.Second, 10 * time.Second, 28 * time.Second},
		{0, 10 * time.Second, 0},
		{15 * time.Second, 0, 0},
		{DefaultDrainDeadline, DefaultStopTimeout, DefaultShutdownBudget},
	}
	for _, c := range cases {
		if got := ShutdownBudget(c.drain, c.stop); got != c.want {
			t.Errorf("ShutdownBudget(%v, %v) got %v, want %v", c.drain, c.stop, got, c.want)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Stop: &quit.Policy{}}); err != ErrNoSignals {
		t.Errorf("New without Signals got %v, want ErrNoSignals", err)
	}
	if _, err := New(Options{Signals: make(chan os.Signal)}); err != ErrNoStop {
		t.Errorf("New without Stop got %v, want ErrNoStop", err)
	}
}
