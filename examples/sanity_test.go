package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/inject"
)

// The wrap mode's defaults and its shutdown budget, from README.md
// ("Sizing terminationGracePeriodSeconds"): DRAIN_DEADLINE + STOP_TIMEOUT
// + 3s must fit in terminationGracePeriodSeconds (30s when unset).
const (
	defaultDrainDeadline = 15 * time.Second
	defaultStopTimeout   = 10 * time.Second
	quitBudget           = 3 * time.Second
	defaultGrace         = 30 * time.Second
)

// Images the examples may use: the app placeholder, Envoy, envoy-lifecycle
// (inject's default, so hand-written and injected manifests agree), and
// "auto", which Istio's injector fills in.
const (
	appImagePrefix = "registry.example/"
	envoyImage     = "envoyproxy/envoy:v1.36.6"
	istioAutoImage = "auto"
)

var lifecycleImage = inject.DefaultImage

// modes are envoy-lifecycle's first arguments that are not a command to
// wrap. The examples always write a wrap as "envoy-lifecycle -- CMD".
var modes = map[string]bool{
	"help": true, "version": true, "doctor": true, "shutdown-manager": true,
	"drain": true, "inject": true, "install": true,
}

// wrapInfo says how a container uses envoy-lifecycle.
type wrapInfo struct {
	wraps bool     // the container's command is envoy-lifecycle -- APP
	mode  string   // or this mode (shutdown-manager, drain, ...)
	app   []string // the wrapped command
}

// lifecycleUse reads argv: ok is false when argv does not run
// envoy-lifecycle; err says why a use is malformed.
func lifecycleUse(argv []string) (w wrapInfo, ok bool, err error) {
	if len(argv) == 0 || filepath.Base(argv[0]) != "envoy-lifecycle" {
		return w, false, nil
	}
	switch {
	case len(argv) > 1 && modes[argv[1]]:
		w.mode = argv[1]
	case len(argv) > 2 && argv[1] == "--":
		w.wraps, w.app = true, argv[2:]
	default:
		return w, true, fmt.Errorf("%q: a wrapped command must follow --", argv)
	}
	return w, true, nil
}

// duration reads a wrap-mode duration variable: Go syntax, 0 or more.
func duration(c *container, name string, def time.Duration) (time.Duration, error) {
	v, ok := c.env(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("container %s: %s=%q is not a duration", c.Name, name, v)
	}
	return d, nil
}

// drainDelay is the longest the wrapper's drain delay can take: a fixed
// DRAIN_DELAY, or with auto (the default) DRAIN_DELAY_MAX, which defaults
// to half of the deadline.
func drainDelay(c *container, deadline time.Duration) (time.Duration, error) {
	if v, ok := c.env("ENVOY_LIFECYCLE_DRAIN_DELAY"); ok && v != "auto" {
		return duration(c, "ENVOY_LIFECYCLE_DRAIN_DELAY", 0)
	}
	return duration(c, "ENVOY_LIFECYCLE_DRAIN_DELAY_MAX", deadline/2)
}

// budget is the wrapped container's shutdown budget.
func budget(c *container) (time.Duration, error) {
	deadline, err := duration(c, "ENVOY_LIFECYCLE_DRAIN_DEADLINE", defaultDrainDeadline)
	if err != nil {
		return 0, err
	}
	stop, err := duration(c, "ENVOY_LIFECYCLE_STOP_TIMEOUT", defaultStopTimeout)
	if err != nil {
		return 0, err
	}
	if deadline == 0 || stop == 0 {
		return 0, fmt.Errorf("container %s: an unbounded drain or stop timeout has no budget", c.Name)
	}
	delay, err := drainDelay(c, deadline)
	if err != nil {
		return 0, err
	}
	if delay >= deadline {
		return 0, fmt.Errorf("container %s: DRAIN_DELAY %v leaves nothing of DRAIN_DEADLINE %v", c.Name, delay, deadline)
	}
	return deadline + stop + quitBudget, nil
}

func isTrue(c *container, name string) bool {
	v, _ := c.env(name)
	return v == "true"
}

func isEnvoy(c *container) bool { return strings.HasPrefix(c.Image, "envoyproxy/envoy:") }

// checkPod is every rule a pod spec of the examples follows.
func checkPod(d *document, ps *podSpec) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	grace := defaultGrace
	if ps.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second
	}
	all := append(append([]container(nil), ps.InitContainers...), ps.Containers...)

	var wrapped []*container
	for i := range all {
		c := &all[i]
		if c.Image != lifecycleImage && c.Image != envoyImage && c.Image != istioAutoImage && !strings.HasPrefix(c.Image, appImagePrefix) {
			fail("container %s: image %q is none of %s, %s, %s*", c.Name, c.Image, lifecycleImage, envoyImage, appImagePrefix)
		}
		w, _, err := lifecycleUse(c.argv())
		if err != nil {
			fail("container %s: %v", c.Name, err)
		}
		if w.wraps {
			wrapped = append(wrapped, c)
		}
		if _, _, err := lifecycleUse(hookArgv(c)); err != nil {
			fail("container %s: preStop: %v", c.Name, err)
		}
		if h := c.preStop(); h != nil && h.Sleep != nil {
			if s := time.Duration(h.Sleep.Seconds) * time.Second; s >= grace {
				fail("container %s: preStop sleep %v does not end before the grace period %v", c.Name, s, grace)
			}
		}
		if h := c.preStop(); h != nil && h.HTTPGet != nil {
			if _, err := c.port(h.HTTPGet.Port); err != nil {
				fail("preStop: %v", err)
			}
		}
		if v, ok := c.env("NEVER_KILL_ISTIO_ON_FAILURE"); ok && v == "true" && ps.RestartPolicy != "OnFailure" {
			fail("container %s: NEVER_KILL_ISTIO_ON_FAILURE=true with restartPolicy %q leaves a failed pod running forever (only OnFailure retries in the pod)", c.Name, ps.RestartPolicy)
		}
	}

	errs = append(errs, checkManager(ps, all, grace)...)
	for _, w := range wrapped {
		if e := envoyIn(ps); e != nil && len(e.Ports) > 0 && !isTrue(w, "NEVER_KILL_ENVOY") {
			if v, _ := w.env("ENVOY_LIFECYCLE_DRAIN"); v != "false" {
				deadline, err1 := duration(w, "ENVOY_LIFECYCLE_DRAIN_DEADLINE", defaultDrainDeadline)
				delay, err2 := drainDelay(w, deadline)
				if err1 == nil && err2 == nil {
					errs = append(errs, checkDrainTime(e, deadline-delay)...)
				}
			}
		}
		b, err := budget(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if b > grace {
			fail("container %s: shutdown budget %v (DRAIN_DEADLINE + STOP_TIMEOUT + 3s) exceeds terminationGracePeriodSeconds %v", w.Name, b, grace)
		}
		// inject's outputs (07's out-*.yaml) are held to it too.
		v, ok := w.env("ENVOY_LIFECYCLE_GRACE_PERIOD")
		switch n, err := strconv.Atoi(v); {
		case !ok:
			fail("container %s: ENVOY_LIFECYCLE_GRACE_PERIOD is not set (doctor checks the budget against it)", w.Name)
		case ok && (err != nil || time.Duration(n)*time.Second != grace):
			fail("container %s: ENVOY_LIFECYCLE_GRACE_PERIOD=%q, but terminationGracePeriodSeconds is %v", w.Name, v, grace)
		}
		never := isTrue(w, "NEVER_KILL_ENVOY") || isTrue(w, "NEVER_KILL_ISTIO")
		for i := range ps.InitContainers {
			s := &ps.InitContainers[i]
			if !s.isNativeSidecar() || !isEnvoy(s) {
				continue
			}
			if !never {
				fail("container %s: Envoy is a native sidecar, which the kubelet stops: set NEVER_KILL_ENVOY=true", w.Name)
			}
			if s.preStop() != nil {
				fail("container %s: a native sidecar's preStop runs at t=0, racing the app's drain", s.Name)
			}
		}
		for i := range ps.Containers {
			e := &ps.Containers[i]
			if !isEnvoy(e) || never {
				continue
			}
			h := e.preStop()
			switch {
			case h == nil:
				fail("container %s: Envoy gets SIGTERM at t=0 and dies before the wrapper drains it: give it a preStop hook", e.Name)
			case h.Sleep != nil && time.Duration(h.Sleep.Seconds)*time.Second < b:
				fail("container %s: preStop sleep %ds ends before the wrapper's budget %v", e.Name, h.Sleep.Seconds, b)
			}
		}
	}
	return errs
}

// envoyIn returns the pod's Envoy container (regular or native sidecar).
func envoyIn(ps *podSpec) *container {
	for _, cs := range [][]container{ps.Containers, ps.InitContainers} {
		for i := range cs {
			if isEnvoy(&cs[i]) {
				return &cs[i]
			}
		}
	}
	return nil
}

// checkDrainTime: a graceful /drain_listeners closes connections over
// Envoy's --drain-time-s (600s by default), which must fit in the time the
// drain leaves for it.
func checkDrainTime(e *container, left time.Duration) []error {
	argv := e.argv()
	v, ok := flagValue(argv, "--drain-time-s")
	if !ok {
		return []error{fmt.Errorf("container %s: no --drain-time-s: a graceful drain takes Envoy's default 600s, past the drain's %v", e.Name, left)}
	}
	n, err := strconv.Atoi(v)
	if err != nil || time.Duration(n)*time.Second > left {
		return []error{fmt.Errorf("container %s: --drain-time-s %s does not fit in the %v the drain leaves", e.Name, v, left)}
	}
	return nil
}

// flagValue finds --name=value or --name value in argv.
func flagValue(argv []string, names ...string) (string, bool) {
	for i, a := range argv {
		for _, n := range names {
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v, true
			}
			if a == n && i+1 < len(argv) {
				return argv[i+1], true
			}
		}
	}
	return "", false
}

// managerSetting reads a shutdown-manager (or drain) setting: a flag (any
// alias), else its variable, else def.
func managerSetting(c *container, argv []string, env, def string, flags ...string) string {
	if v, ok := flagValue(argv, flags...); ok {
		return v
	}
	if v, ok := c.env(env); ok {
		return v
	}
	return def
}

// managerDuration parses the manager's durations: seconds (5, 2.5) or Go
// durations (500ms).
func managerDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// checkManager sizes a pod drained by the shutdown manager: the longest
// preStop hook that waits on it (its deadline, from ?deadline= or the
// manager's --deadline; /waitz's --waitz-timeout; a drain exec hook's
// --deadline), plus the manager's --shutdown-timeout and 3s, must fit in
// the grace period; and Envoy's --drain-time-s in the drain.
func checkManager(ps *podSpec, all []container, grace time.Duration) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var mgr *container
	for i := range all {
		if w, ok, _ := lifecycleUse(all[i].argv()); ok && w.mode == "shutdown-manager" {
			mgr = &all[i]
		}
	}
	var longest time.Duration
	var drains, drainListeners bool
	setting := func(c *container, argv []string, env, def string, flags ...string) time.Duration {
		d, err := managerDuration(managerSetting(c, argv, env, def, flags...))
		if err != nil {
			fail("container %s: %s: %v", c.Name, flags[0], err)
		}
		return d
	}
	port, shutdownTimeout, delay := 0, 5*time.Second, 5*time.Second
	var deadline, waitz time.Duration
	if mgr != nil {
		argv := mgr.argv()
		port, _ = strconv.Atoi(managerSetting(mgr, argv, "PORT", "8090", "--port", "--serve-port"))
		deadline = setting(mgr, argv, "SHUTDOWN_MANAGER_DEADLINE", "300s", "--deadline", "--check-deadline-seconds")
		waitz = setting(mgr, argv, "SHUTDOWN_MANAGER_WAITZ_TIMEOUT", "10m", "--waitz-timeout")
		shutdownTimeout = setting(mgr, argv, "SHUTDOWN_MANAGER_SHUTDOWN_TIMEOUT", "5s", "--shutdown-timeout")
		delay = setting(mgr, argv, "SHUTDOWN_MANAGER_DELAY", "5s", "--delay", "--check-drain-delay", "--check-delay", "--initial-delay-seconds")
		drainListeners = managerSetting(mgr, argv, "SHUTDOWN_MANAGER_DRAIN_LISTENERS", "true", "--drain-listeners") != "false"
	}
	for i := range all {
		c := &all[i]
		h := c.preStop()
		switch {
		case h == nil:
		case h.Exec != nil:
			w, ok, _ := lifecycleUse(h.Exec.Command)
			if !ok || w.mode != "drain" {
				continue
			}
			argv := h.Exec.Command
			drains = true
			drainListeners = managerSetting(c, argv, "SHUTDOWN_MANAGER_DRAIN_LISTENERS", "true", "--drain-listeners") != "false"
			delay = setting(c, argv, "SHUTDOWN_MANAGER_DELAY", "5s", "--delay", "--check-drain-delay", "--check-delay", "--initial-delay-seconds")
			longest = max(longest, setting(c, argv, "SHUTDOWN_MANAGER_DEADLINE", "300s", "--deadline", "--check-deadline-seconds"))
		case h.HTTPGet != nil && mgr != nil:
			if p, err := c.port(h.HTTPGet.Port); err != nil || p != port {
				continue
			}
			path, query, _ := strings.Cut(h.HTTPGet.Path, "?")
			switch path {
			case "/shutdown", "/drain", "/waitforshutdown", "/shutdown/ready":
				d := deadline
				if v, ok := strings.CutPrefix(query, "deadline="); ok {
					if q, err := managerDuration(v); err == nil {
						d = q
					} else {
						fail("container %s: preStop %s: %v", c.Name, h.HTTPGet.Path, err)
					}
				}
				drains = drains || path != "/waitforshutdown"
				longest = max(longest, d)
			case "/waitz":
				longest = max(longest, waitz)
			default:
				fail("container %s: preStop %s is not a shutdown manager endpoint", c.Name, h.HTTPGet.Path)
			}
		}
	}
	if longest == 0 {
		return errs
	}
	if b := longest + shutdownTimeout + quitBudget; b > grace {
		fail("the longest preStop wait %v + --shutdown-timeout %v + 3s = %v exceeds terminationGracePeriodSeconds %v", longest, shutdownTimeout, b, grace)
	}
	if e := envoyIn(ps); e != nil && drains && drainListeners {
		errs = append(errs, checkDrainTime(e, longest-delay)...)
	}
	return errs
}

// hookArgv is the command of the container's exec preStop hook, if any.
func hookArgv(c *container) []string {
	if h := c.preStop(); h != nil && h.Exec != nil {
		return h.Exec.Command
	}
	return nil
}

// TestManifestSanity checks what strict decoding cannot: known kinds, the
// grace period against each wrapped container's budget, and the -- before
// every wrapped command.
func TestManifestSanity(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	for _, d := range docs {
		t.Run(d.String(), func(t *testing.T) {
			want, ok := knownKinds[d.kind]
			switch {
			case !ok:
				t.Fatalf("unknown kind %q (add it to knownKinds and to the strict test's types)", d.kind)
			case d.apiVersion != want:
				t.Fatalf("apiVersion %q, want %q for %s", d.apiVersion, want, d.kind)
			case d.name == "":
				t.Fatal("no metadata.name")
			}
			ps, err := d.podSpec()
			if err == errNoPodSpec {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range checkPod(d, ps) {
				t.Error(err)
			}
		})
	}
}

// TestSanityRulesCatchMistakes feeds checkPod broken pods, so a rule that
// silently stopped working would show.
func TestSanityRulesCatchMistakes(t *testing.T) {
	t.Parallel()
	wrapped := func(env ...envVar) container {
		return container{Name: "app", Image: "registry.example/app:1.0",
			Command: []string{"/usr/local/bin/envoy-lifecycle", "--", "/app"},
			Env:     append([]envVar{{Name: "ENVOY_LIFECYCLE_GRACE_PERIOD", Value: "30"}}, env...)}
	}
	envoy := container{Name: "envoy", Image: envoyImage}
	sleepy := envoy
	sleepy.Lifecycle = &struct {
		PreStop *handler `yaml:"preStop"`
	}{&handler{Sleep: &struct {
		Seconds int64 `yaml:"seconds"`
	}{29}}}
	sixty := int64(60)
	for _, tc := range []struct {
		name string
		ps   podSpec
		want string
	}{
		{"no --", podSpec{Containers: []container{{Name: "app", Image: "registry.example/a", Command: []string{"envoy-lifecycle", "/app"}}}}, "must follow --"},
		{"budget", podSpec{Containers: []container{wrapped(envVar{Name: "ENVOY_LIFECYCLE_DRAIN_DEADLINE", Value: "20s"}), sleepy}}, "exceeds terminationGracePeriodSeconds"},
		{"grace env", podSpec{TerminationGracePeriodSeconds: &sixty, Containers: []container{wrapped(), sleepy}}, "but terminationGracePeriodSeconds is 1m0s"},
		{"envoy without preStop", podSpec{Containers: []container{wrapped(), envoy}}, "give it a preStop hook"},
		{"short sleep", podSpec{Containers: []container{wrapped(envVar{Name: "ENVOY_LIFECYCLE_DRAIN_DEADLINE", Value: "10s"}), func() container {
			c := sleepy
			c.Lifecycle.PreStop = &handler{Sleep: &struct {
				Seconds int64 `yaml:"seconds"`
			}{20}}
			return c
		}()}}, "ends before the wrapper's budget"},
		{"never kill on failure", podSpec{RestartPolicy: "Never", Containers: []container{wrapped(envVar{Name: "NEVER_KILL_ISTIO_ON_FAILURE", Value: "true"})}}, "only OnFailure"},
		{"native sidecar quit", podSpec{InitContainers: []container{{Name: "envoy", Image: envoyImage, RestartPolicy: "Always"}}, Containers: []container{wrapped()}}, "set NEVER_KILL_ENVOY=true"},
		{"image", podSpec{Containers: []container{{Name: "x", Image: "busybox"}}}, "image \"busybox\""},
		{"manager budget", podSpec{Containers: []container{
			withPreStop(envoyDrained("20"), &handler{HTTPGet: &httpGet{Path: "/shutdown?deadline=40", Port: 8090}}),
			{Name: "shutdown-manager", Image: lifecycleImage, Args: []string{"shutdown-manager"}},
		}}, "exceeds terminationGracePeriodSeconds"},
		{"manager default deadline", podSpec{TerminationGracePeriodSeconds: &sixty, Containers: []container{
			withPreStop(envoyDrained("20"), &handler{HTTPGet: &httpGet{Path: "/shutdown", Port: 8090}}),
			{Name: "shutdown-manager", Image: lifecycleImage, Args: []string{"shutdown-manager"}},
		}}, "5m0s + --shutdown-timeout 5s"},
		{"drain time", podSpec{TerminationGracePeriodSeconds: &sixty, Containers: []container{
			withPreStop(envoyDrained("30"), &handler{HTTPGet: &httpGet{Path: "/shutdown?deadline=30", Port: 8090}}),
			{Name: "shutdown-manager", Image: lifecycleImage, Args: []string{"shutdown-manager"}},
		}}, "--drain-time-s 30 does not fit in the 25s"},
		{"not an endpoint", podSpec{Containers: []container{
			withPreStop(envoyDrained("5"), &handler{HTTPGet: &httpGet{Path: "/shutdwn", Port: 8090}}),
			{Name: "shutdown-manager", Image: lifecycleImage, Args: []string{"shutdown-manager"}},
		}}, "not a shutdown manager endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkPod(&document{file: "test"}, &tc.ps)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Errorf("errors got %q, want one containing %q", got, tc.want)
			}
		})
	}
}

// envoyDrained is an Envoy container whose graceful drain takes seconds.
func envoyDrained(seconds string) container {
	return container{Name: "envoy", Image: envoyImage, Args: []string{"--drain-time-s", seconds},
		Ports: []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		}{{Name: "http", ContainerPort: 8080}}}
}

func withPreStop(c container, h *handler) container {
	c.Lifecycle = &struct {
		PreStop *handler `yaml:"preStop"`
	}{h}
	return c
}

// TestEveryExampleHasAReadme: each folder has a README, and the index
// links each folder.
func TestEveryExampleHasAReadme(t *testing.T) {
	t.Parallel()
	index, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(e.Name(), "README.md")); err != nil {
			t.Errorf("%s has no README.md", e.Name())
		}
		if !strings.Contains(string(index), "("+e.Name()+"/)") {
			t.Errorf("README.md does not link %s/", e.Name())
		}
	}
	if n != 7 {
		t.Errorf("example folders got %d, want 7", n)
	}
}
