package examples

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/kubeletsim"
	"envoy-lifecycle/lbsim"
)

// play says how a test runs a manifest's pod with local processes: the
// containers, hooks and settings come from the manifest; play only swaps
// images for binaries, ports for free ones, and production durations for
// test-sized ones.
type play struct {
	// apps maps a container to the test app that replaces its command
	// (for a wrapped container, everything after "--").
	apps map[string][]string
	// unwrap runs these containers' apps without envoy-lifecycle (the
	// "without the wrapper" half of a comparison).
	unwrap map[string]bool
	// envoy maps each Envoy container to the fake's flags (-admin,
	// -listener, ...), added to the manifest's Envoy arguments.
	envoy map[string][]string
	// env replaces values the manifest sets, per container. Each name must
	// be set in the manifest: a test cannot slip in a setting.
	env map[string]map[string]string
	// addEnv adds test plumbing the manifest does not set, per container.
	addEnv map[string]map[string]string
	// ports maps the manifest's ports to local ones, for hooks and probes.
	ports map[int]int
	// sleeps is the test length of each container's preStop sleep.
	sleeps map[string]time.Duration
	// dropHook removes these containers' preStop hooks.
	dropHook map[string]bool
	// extra are containers an injector adds (istio-proxy), appended.
	extra []kubeletsim.Container
	// flags replaces the values of envoy-lifecycle flags the manifest
	// passes (--name=value or --name value), per container, in its command
	// and its exec hook. Each flag must be in the manifest.
	flags map[string]map[string]string
	// secrets resolves secretKeyRef: Secret name, then key (see secrets).
	secrets map[string]map[string]string
}

// spec builds the kubeletsim spec of the document's pod. Init containers
// with restartPolicy Always become native sidecars, the others run to
// completion first. Each volume is a directory of its own, and the paths
// under a container's mounts are rewritten to it.
func (pl play) spec(t *testing.T, d *document) kubeletsim.Spec {
	t.Helper()
	ps, err := d.podSpec()
	if err != nil {
		t.Fatal(err)
	}
	spec := kubeletsim.Spec{RestartPolicy: kubeletsim.RestartPolicy(ps.RestartPolicy), Logf: t.Logf}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = kubeletsim.RestartAlways // a Deployment's pods
	}
	vols := map[string]string{}
	for i := range ps.InitContainers {
		c := &ps.InitContainers[i]
		if c.isNativeSidecar() {
			spec.Sidecars = append(spec.Sidecars, pl.container(t, d, c, vols))
		} else {
			spec.InitContainers = append(spec.InitContainers, pl.container(t, d, c, vols))
		}
	}
	for i := range ps.Containers {
		spec.Containers = append(spec.Containers, pl.container(t, d, &ps.Containers[i], vols))
	}
	spec.Containers = append(spec.Containers, pl.extra...)
	return spec
}

func (pl play) container(t *testing.T, d *document, c *container, vols map[string]string) kubeletsim.Container {
	t.Helper()
	out := kubeletsim.Container{Name: c.Name}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		if vols[m.Name] == "" {
			vols[m.Name] = t.TempDir()
		}
		mounts[m.MountPath] = vols[m.Name]
	}
	var err error
	if flags, ok := pl.envoy[c.Name]; ok {
		// The manifest's Envoy flags go too: the fake ignores them.
		out.Argv = append(append([]string{envoyfake(t)}, rewritePaths(c.Args, mounts)...), flags...)
	} else if isEnvoy(c) {
		t.Fatalf("%s: container %s runs Envoy: the test must give the fake's flags", d, c.Name)
	} else if pl.unwrap[c.Name] {
		out.Argv = pl.apps[c.Name]
	} else if out.Argv, err = pl.argv(testproc.Build(t), c.argv(), pl.apps[c.Name], mounts); err != nil {
		t.Fatalf("%s: container %s: %v", d, c.Name, err)
	}
	seen := map[string]bool{}
	out.Argv = pl.setFlags(c.Name, out.Argv, seen)
	if len(out.Argv) == 0 {
		t.Fatalf("%s: container %s: no command to run", d, c.Name)
	}
	out.Env = pl.environ(t, d, c)

	if h := c.preStop(); h != nil && !pl.dropHook[c.Name] {
		out.PreStop = &kubeletsim.Handler{}
		switch {
		case h.Exec != nil:
			if out.PreStop.Exec, err = pl.argv(testproc.Build(t), h.Exec.Command, nil, mounts); err != nil {
				t.Fatalf("%s: container %s: preStop: %v", d, c.Name, err)
			}
			out.PreStop.Exec = pl.setFlags(c.Name, out.PreStop.Exec, seen)
		case h.HTTPGet != nil:
			out.PreStop.HTTPGet = pl.httpGet(t, d, c, h.HTTPGet)
		case h.Sleep != nil:
			s, ok := pl.sleeps[c.Name]
			if !ok {
				t.Fatalf("%s: container %s sleeps %ds in preStop: the test must give a test-sized sleep", d, c.Name, h.Sleep.Seconds)
			}
			out.PreStop.Sleep = s
		default:
			t.Fatalf("%s: container %s: empty preStop", d, c.Name)
		}
	}
	if c.StartupProbe != nil && c.StartupProbe.HTTPGet != nil {
		out.StartupProbe = pl.httpGet(t, d, c, c.StartupProbe.HTTPGet)
	}
	for f := range pl.flags[c.Name] {
		if !seen[f] {
			t.Fatalf("%s: container %s does not pass %s: the test cannot replace it", d, c.Name, f)
		}
	}
	return out
}

// setFlags replaces the values of the container's flags in argv, and
// records which it found.
func (pl play) setFlags(name string, argv []string, seen map[string]bool) []string {
	out := append([]string(nil), argv...)
	for i := 0; i < len(out); i++ {
		for f, v := range pl.flags[name] {
			switch {
			case out[i] == f && i+1 < len(out):
				out[i+1] = v
				seen[f] = true
			case strings.HasPrefix(out[i], f+"="):
				out[i] = f + "=" + v
				seen[f] = true
			}
		}
	}
	return out
}

// argv maps a command line of the manifest to local binaries:
// envoy-lifecycle is bin, the built binary, or the copy an init container
// installed in a volume; the wrapped command is app. Paths under the
// container's mounts are rewritten to the volumes' directories.
func (pl play) argv(bin string, argv, app []string, mounts map[string]string) ([]string, error) {
	if len(argv) == 0 || filepath.Base(argv[0]) != "envoy-lifecycle" {
		if app == nil {
			return nil, fmt.Errorf("%q: not envoy-lifecycle, and the test gave no app", argv)
		}
		return app, nil
	}
	w, _, err := lifecycleUse(argv)
	if err != nil {
		return nil, err
	}
	local := rewritePaths(argv, mounts)
	if local[0] != argv[0] {
		bin = local[0] // installed in a volume
	}
	if w.wraps {
		if app == nil {
			return nil, fmt.Errorf("%q wraps %q: the test gave no app", argv, w.app)
		}
		return append([]string{bin, "--"}, app...), nil
	}
	return append([]string{bin}, local[1:]...), nil
}

// rewritePaths replaces each mount path, at the start of an argument or
// after "=" or "://", with its directory.
func rewritePaths(argv []string, mounts map[string]string) []string {
	paths := make([]string, 0, len(mounts))
	for mp := range mounts {
		paths = append(paths, mp)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = a
		for _, mp := range paths {
			for _, pre := range []string{"", "=", "://"} {
				j := strings.Index(a, pre+mp)
				if j < 0 || (pre == "" && j != 0) {
					continue
				}
				rest := a[j+len(pre)+len(mp):]
				if rest != "" && rest[0] != '/' {
					continue
				}
				out[i] = a[:j+len(pre)] + mounts[mp] + rest
				break
			}
			if out[i] != a {
				break
			}
		}
	}
	return out
}

func (pl play) httpGet(t *testing.T, d *document, c *container, g *httpGet) *kubeletsim.HTTPGet {
	t.Helper()
	p, err := c.port(g.Port)
	if err != nil {
		t.Fatalf("%s: %v", d, err)
	}
	local, ok := pl.ports[p]
	if !ok {
		t.Fatalf("%s: container %s: the test maps no local port for %d", d, c.Name, p)
	}
	out := &kubeletsim.HTTPGet{Port: local, Path: g.Path}
	for _, h := range g.HTTPHeaders {
		out.Headers = append(out.Headers, kubeletsim.Header{Name: h.Name, Value: h.Value})
	}
	return out
}

// environ is the container's environment: the manifest's literal values,
// with the test's replacements and additions, and what the test binary
// needs to play an app.
func (pl play) environ(t *testing.T, d *document, c *container) []string {
	t.Helper()
	vals := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			vals[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := pl.secrets[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("%s: container %s: %s comes from secret %s key %s, which the test did not load", d, c.Name, e.Name, ref.Name, ref.Key)
			}
			vals[e.Name] = v
		}
	}
	for k, v := range pl.env[c.Name] {
		if _, ok := vals[k]; !ok {
			t.Fatalf("%s: container %s does not set %s: the test cannot replace it", d, c.Name, k)
		}
		vals[k] = v
	}
	for k, v := range pl.addEnv[c.Name] {
		if _, ok := vals[k]; ok {
			t.Fatalf("%s: container %s sets %s already: replace it with env", d, c.Name, k)
		}
		vals[k] = v
	}
	env := testproc.BareEnv()
	for k, v := range vals {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

func local(port int) string { return "127.0.0.1:" + itoa(port) }

func itoa(n int) string { return strconv.Itoa(n) }

// listenerStat is the fake's connection gauge for a listener on port.
func listenerStat(port int) string {
	return `^listener\.127\.0\.0\.1_` + strconv.Itoa(port) + `\.downstream_cx_active$`
}

// startPod starts the pod and closes it at cleanup, logging its timeline
// when the test failed, or always with EXAMPLES_TIMELINE set.
func startPod(t *testing.T, spec kubeletsim.Spec) *kubeletsim.Pod {
	t.Helper()
	p := kubeletsim.MustStart(t, spec)
	if os.Getenv("EXAMPLES_TIMELINE") != "" {
		// A failed test has it logged by MustStart.
		t.Cleanup(func() {
			if !t.Failed() {
				t.Logf("timeline:\n%s", p.Timeline())
			}
		})
	}
	return p
}

// waitEnvoy waits until the Envoy fake of container name listens.
func waitEnvoy(t *testing.T, p *kubeletsim.Pod, name string) {
	t.Helper()
	p.MustWait(t, name+" listening", kubeletsim.Output(name, "envoyfake admin="))
}

// waitDone waits, bounded, for the pod to be done.
func waitDone(t *testing.T, p *kubeletsim.Pod) {
	t.Helper()
	testproc.WaitClosed(t, "the pod to complete", p.Done())
}

// order fails unless the events matching preds were recorded in that
// order (each the first of its kind).
func order(t *testing.T, p *kubeletsim.Pod, steps ...step) {
	t.Helper()
	last, lastName := -1, ""
	for _, s := range steps {
		_, i, ok := p.First(s.pred)
		if !ok {
			t.Errorf("no %s", s.name)
			return
		}
		if i <= last {
			t.Errorf("%s (event %d) came before %s (event %d)", s.name, i, lastName, last)
		}
		last, lastName = i, s.name
	}
}

// step is one expected event of a timeline.
type step struct {
	name string
	pred func(kubeletsim.Event) bool
}

func is(k kubeletsim.Kind, container string) step {
	return step{container + " " + string(k), kubeletsim.Is(k, container)}
}

func says(container, s string) step {
	return step{fmt.Sprintf("%s saying %q", container, s), kubeletsim.Output(container, s)}
}

// none fails if an event matches pred.
func none(t *testing.T, p *kubeletsim.Pod, what string, pred func(kubeletsim.Event) bool) {
	t.Helper()
	if e, _, ok := p.First(pred); ok {
		t.Errorf("%s: %s %s %s", what, e.Container, e.Kind, e.Detail)
	}
}

// load is a load balancer sending traffic to the pod's Envoy while it
// terminates.
type load struct {
	cancel context.CancelFunc
	done   chan lbsim.Stats
}

// startLoad starts the load balancer and returns once a request went
// through. It stops by itself once the pod is out of rotation.
func startLoad(t *testing.T, listener int, healthPath string) *load {
	t.Helper()
	lb := lbsim.LB{Target: local(listener), Path: "/work", HealthPath: healthPath,
		Workers: 4, HealthInterval: 20 * time.Millisecond, Deprogram: 100 * time.Millisecond, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	l := &load{cancel: cancel, done: make(chan lbsim.Stats, 1)}
	flowing := make(chan struct{})
	go func() { l.done <- lb.Run(ctx, flowing) }()
	t.Cleanup(cancel)
	testproc.WaitClosed(t, "a request through the pod", flowing)
	return l
}

// stop ends the load (if it has not stopped by itself) and returns what
// it saw.
func (l *load) stop() lbsim.Stats {
	l.cancel()
	return <-l.done
}

func has(s, sub string) bool { return strings.Contains(s, sub) }
