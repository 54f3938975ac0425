package inject

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/shutdownmgr"

	yaml "go.yaml.in/yaml/v3"
)

// What the presets write. README.md shows each.
const (
	volumeName  = "envoy-lifecycle"              // the emptyDir holding the binary
	mountPath   = "/envoy-lifecycle"             // where the app container mounts it
	wrapperPath = mountPath + "/envoy-lifecycle" // the app's new command[0]
	installName = "envoy-lifecycle-install"      // the init container that copies the binary
	// installPath is where the init container mounts the volume. Not
	// mountPath: the image holds its binary at /envoy-lifecycle.
	installPath = "/mnt/envoy-lifecycle"

	managerName     = "shutdown-manager"
	managerPort     = shutdownmgr.DefaultPort
	managerPortName = "shutdown-mgr"
	// The emptyDir of the manager's state and ready files, so that a
	// manager restarted alone finds the state file (shutdownmgr/README.md,
	// "Restart safety"). The paths are those of examples/03.
	managerVolume    = "envoy-lifecycle-shutdown"
	managerDir       = "/shutdown"
	managerStateFile = managerDir + "/state"
	managerReadyFile = managerDir + "/ok"

	envoyAdminPort = 9901
	istioAdminPort = 15000
	istioAgentPort = 15020

	// The wrap mode's defaults, from the package that owns them (README
	// "Sizing terminationGracePeriodSeconds").
	defaultDrainDeadline = lifecycle.DefaultDrainDeadline
	defaultStopTimeout   = lifecycle.DefaultStopTimeout
	quitBudget           = lifecycle.QuitBudget

	// graceEnv is the wrapper's copy of the pod's grace period, which
	// `envoy-lifecycle doctor` checks the budget against (the downward API
	// cannot expose it).
	graceEnv = "ENVOY_LIFECYCLE_GRACE_PERIOD"

	// GraceMargin is added to a preset's drain budget before comparing it
	// with terminationGracePeriodSeconds.
	GraceMargin = 2 * time.Second
)

// proxyRule says which containers count as the proxy, for messages.
const proxyRule = "a container named envoy or istio-proxy, or whose image contains envoy or proxyv2"

// applyPreset runs the preset on the workloads of one document.
// Workloads that don't fit are skipped with a note; problems that need the
// user (an app without a command, a grace period too short with
// --no-fix-grace) are kept to report at the end; other errors stop the run.
func (r *run) applyPreset(ws []*workload) error {
	for _, w := range ws {
		var ok bool
		var err error
		if r.o.Preset == "shutdown-manager" {
			ok, err = r.manage(w)
		} else {
			ok, err = r.wrap(w, r.seenApps)
		}
		var e *Error
		switch {
		case err != nil && errors.As(err, &e) && e.Code == ExitMismatch:
			r.errs = append(r.errs, err)
		case err != nil:
			return err
		case ok:
			r.done++
		}
		r.workloads++
	}
	return nil
}

// finishPreset reports what applyPreset kept, an --app-container no
// workload has, and a manifest where no workload fits.
func (r *run) finishPreset() error {
	for name := range r.o.Entrypoints {
		if !r.usedEntrypoints[name] {
			r.errs = append(r.errs, &Error{Code: ExitMismatch, File: r.file, Msg: fmt.Sprintf("entrypoint of %q (--entrypoint %s=... or --entrypoints): no workload has an app container named %q", name, name, name)})
		}
	}
	if r.o.ProxyContainer != "" && !r.seenProxy && r.workloads > 0 {
		r.errs = append(r.errs, &Error{Code: ExitMismatch, File: r.file, Msg: fmt.Sprintf("--proxy-container %q: no workload has such a container", r.o.ProxyContainer)})
	}
	for _, name := range r.o.AppContainers {
		if !r.seenApps[name] {
			r.errs = append(r.errs, &Error{Code: ExitMismatch, File: r.file, Msg: fmt.Sprintf("--app-container %q: no workload has such a container", name)})
		}
	}
	if len(r.errs) > 0 {
		return errors.Join(r.errs...)
	}
	switch {
	case r.workloads == 0:
		r.remarkf("%s: no workload (%s) in the manifest: nothing to do", r.file, workloadKinds())
	case r.done == 0:
		return &Error{Code: ExitMismatch, File: r.file, Msg: fmt.Sprintf("no workload fits --preset %s (see the notes above)", r.o.Preset)}
	}
	return nil
}

func workloadKinds() string {
	var ks []string
	for _, k := range []string{"deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob", "pod"} {
		ks = append(ks, kinds[k].kind)
	}
	return strings.Join(ks, ", ")
}

// skipNoProxy notes a workload skipped for want of a proxy.
func (r *run) skipNoProxy(w *workload, cs []container) {
	if r.o.ProxyContainer != "" {
		r.remarkf("%s: skipped: no container named by --proxy-container (%q; containers: %s)", w, r.o.ProxyContainer, names(cs))
		return
	}
	r.remarkf("%s: skipped: no Envoy container (%s; or name it with --proxy-container)", w, proxyRule)
}

// isIstioProxy reports Istio's sidecar: named istio-proxy, or its proxyv2
// image.
func isIstioProxy(c container) bool {
	return c.name == istioProxy || strings.Contains(strings.ToLower(scalarAt(c.node, "image")), "proxyv2")
}

// isProxy applies the proxy rule to a container.
func isProxy(c container) bool {
	if c.name == "envoy" || c.name == istioProxy {
		return true
	}
	img := strings.ToLower(scalarAt(c.node, "image"))
	if strings.Contains(img, "envoy-lifecycle") {
		return false
	}
	return strings.Contains(img, "envoy") || strings.Contains(img, "proxyv2")
}

// proxy returns the pod's proxy container: --proxy-container, or the first
// that fits the proxy rule and is not an --app-container.
func (r *run) proxy(cs []container) (container, bool) {
	if r.o.ProxyContainer != "" {
		c, ok := find(cs, r.o.ProxyContainer)
		r.seenProxy = r.seenProxy || ok
		return c, ok
	}
	for _, c := range cs {
		if isProxy(c) && !r.isApp(c.name) {
			return c, true
		}
	}
	return container{}, false
}

func (r *run) isApp(name string) bool {
	for _, a := range r.o.AppContainers {
		if a == name {
			return true
		}
	}
	return false
}

// apps returns the containers to wrap: the --app-container ones, or every
// container that is neither a proxy nor one inject added.
func (r *run) apps(cs []container, proxy container, hasProxy bool, seen map[string]bool) []container {
	var out []container
	for _, c := range cs {
		switch {
		case c.sidecar || (hasProxy && c.node == proxy.node):
		case len(r.o.AppContainers) > 0:
			if r.isApp(c.name) {
				seen[c.name] = true
				out = append(out, c)
			}
		case !isProxy(c) && c.name != managerName:
			out = append(out, c)
		}
	}
	return out
}

// wrap runs the envoy or istio preset on one workload. It reports whether
// the workload was injected (or already was), false when it was skipped.
// The steps: pick the containers, wrap the apps, check the grace period,
// and give the proxy its hook.
func (r *run) wrap(w *workload, seenApps map[string]bool) (bool, error) {
	p, ok, err := r.wrapPlan(w, seenApps)
	if err != nil || !ok {
		return false, err
	}
	b, err := r.wrapApps(w, p)
	if err != nil {
		return false, err
	}
	sleep, err := r.wrapGrace(w, p, b)
	if err != nil {
		return false, err
	}
	return true, r.proxyHook(w, p, sleep)
}

// wrapPlan is what wrap found in a pod.
type wrapPlan struct {
	spec     *yaml.Node
	istio    bool
	proxy    container
	hasProxy bool
	apps     []container
	// native: the proxy is a native sidecar (an init container with
	// restartPolicy Always, declared, or Istio's to be injected): kubelet
	// stops it after the app, so the wrapper must leave it running.
	native bool
}

// wrapPlan picks the proxy and the apps, or skips the workload with a
// note.
func (r *run) wrapPlan(w *workload, seenApps map[string]bool) (wrapPlan, bool, error) {
	p := wrapPlan{istio: r.o.Preset == "istio"}
	var err error
	if p.spec, err = w.podSpec(); err != nil {
		return p, false, err
	}
	if p.istio && istioOff(w) {
		r.remarkf("%s: skipped: Istio injection is off for this pod (sidecar.istio.io/inject: \"false\")", w)
		return p, false, nil
	}
	cs, err := containers(p.spec)
	if err != nil {
		return p, false, w.fail(err)
	}
	p.proxy, p.hasProxy = r.proxy(cs)
	p.apps = r.apps(cs, p.proxy, p.hasProxy, seenApps)
	p.native = (p.hasProxy && p.proxy.sidecar) || (p.istio && nativeSidecarOn(w))
	switch {
	case !p.hasProxy && !p.istio:
		r.skipNoProxy(w, cs)
		return p, false, nil
	case !p.istio && isIstioProxy(p.proxy) && r.o.AdminPort == 0:
		return p, false, w.errorf(p.proxy.node, "container %q is Istio's proxy (admin port 15000, stopped through pilot-agent), which --preset envoy would point the wrapper at port 9901 for: "+
			"use --preset istio, or give --admin-port to treat it as a plain Envoy", p.proxy.name)
	case len(p.apps) == 0 && len(r.o.AppContainers) > 0:
		r.remarkf("%s: skipped: no container named by --app-container (%s) besides the proxy (containers: %s)", w, strings.Join(r.o.AppContainers, ", "), names(cs))
		return p, false, nil
	case len(p.apps) == 0:
		r.remarkf("%s: skipped: no app container besides the proxy (containers: %s; a pod with no app can use --preset shutdown-manager)", w, names(cs))
		return p, false, nil
	case len(p.apps) > 1:
		r.remarkf("%s: wrapped %d containers (%s): each will drain and stop the proxy; pick the app with --app-container", w, len(p.apps), names(p.apps))
	}
	return p, true, nil
}

// drainBudget is the largest of the wrapped apps' budgets.
type drainBudget struct {
	secs    int
	bounded bool   // false when an app has no limit (a 0 deadline or timeout)
	why     string // how secs adds up, for messages
}

// wrapApps wraps each app's command, points it at the proxy and mounts the
// binary (adding the install init container when one needs it), and
// returns the drain budget. Apps without a command are all reported.
func (r *run) wrapApps(w *workload, p wrapPlan) (drainBudget, error) {
	adminPort := r.o.AdminPort
	if adminPort == 0 {
		adminPort = envoyAdminPort
		if p.istio {
			adminPort = istioAdminPort
		}
	}
	b := drainBudget{bounded: true}
	copied := false
	var errs []error
	for _, app := range p.apps {
		secs, ok, reason, err := r.budget(w, app)
		if err != nil {
			return b, err
		}
		if !ok {
			b.bounded = false
		} else if secs > b.secs {
			b.secs, b.why = secs, reason
		}
		wrapped, err := r.wrapCommand(w, app)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		copied = copied || wrapped
		if err := r.setWrapEnv(app, adminPort, p.istio, p.native); err != nil {
			return b, w.fail(fmt.Errorf("container %q: %w", app.name, err))
		}
		if wrapped {
			if err := mountBinary(app.node); err != nil {
				return b, w.fail(fmt.Errorf("container %q: %w", app.name, err))
			}
		}
	}
	if len(errs) > 0 {
		return b, errors.Join(errs...)
	}
	if copied {
		return b, r.addInstall(w, p.spec)
	}
	return b, nil
}

// wrapGrace checks the grace period against the budget (raising it or
// failing), copies the final one to each app for doctor, and returns how
// long the proxy's preStop sleeps.
func (r *run) wrapGrace(w *workload, p wrapPlan, b drainBudget) (int, error) {
	sleep := b.secs
	var grace int
	var err error
	if b.bounded {
		if grace, err = r.checkGrace(w, p.spec, b.secs, b.why); err != nil {
			return 0, err
		}
	} else {
		if grace, _, err = gracePeriod(p.spec); err != nil {
			return 0, w.fail(err)
		}
		sleep = grace
		r.remarkf("%s: terminationGracePeriodSeconds not checked: ENVOY_LIFECYCLE_DRAIN_DEADLINE or ENVOY_LIFECYCLE_STOP_TIMEOUT is 0 (no limit); the proxy's preStop sleeps the whole grace period, %ds", w, grace)
	}
	for _, app := range p.apps {
		if err := setEnv(app.node, graceEnv, strconv.Itoa(grace), false); err != nil {
			return 0, w.fail(fmt.Errorf("container %q: %w", app.name, err))
		}
	}
	return sleep, nil
}

// proxyHook gives the proxy a preStop sleep that keeps it up until the
// wrapper stops it: on the proxy, or on an istio-proxy stub; none for a
// native sidecar, which kubelet stops after the app.
func (r *run) proxyHook(w *workload, p wrapPlan, sleep int) error {
	proxy := p.proxy
	switch {
	case p.native && p.istio && p.hasProxy:
		r.remarkf("%s: %q is an Istio native sidecar: kubelet stops it after the app exits, so it gets no preStop hook, and the wrapper leaves it running (NEVER_KILL_ISTIO=true)", w, proxy.name)
	case p.native && p.istio:
		r.remarkf("%s: sidecar.istio.io/nativeSidecar is \"true\": Istio injects %s as a native sidecar, which kubelet stops after the app exits, so inject adds no %s stub, and the wrapper leaves it running (NEVER_KILL_ISTIO=true)", w, istioProxy, istioProxy)
	case p.native:
		r.remarkf("%s: %q is a native sidecar: kubelet stops it after the app exits, so it gets no preStop hook, and the wrapper leaves it running (NEVER_KILL_ENVOY=true)", w, proxy.name)
		// kubelet runs every preStop hook at t=0, a native sidecar's too
		// (only its SIGTERM waits for the app): one here races the drain.
		if lc, _ := lookup(proxy.node, "lifecycle"); lc != nil {
			if ps, _ := lookup(lc, "preStop"); ps != nil && !isNull(ps) {
				r.remarkf("%s: container %q has a preStop hook, which kubelet runs at t=0 even for a native sidecar, racing the wrapper's drain: remove it", w, proxy.name)
			}
		}
	case p.hasProxy && sleepsAtLeast(proxy.node, sleep):
		// A longer sleep is the user's choice (examples/02 sleeps past
		// the budget): kept, with the comments around it.
	case p.hasProxy:
		replaced, err := setPreStop(proxy.node, sleepHandler(sleep))
		if err != nil {
			return w.fail(fmt.Errorf("container %q: %w", proxy.name, err))
		}
		if replaced {
			r.notef("%s: container %q: replaced its preStop hook", w, proxy.name)
		}
	case r.o.IstioStub:
		if err := addContainer(p.spec, istioStub(sleepHandler(sleep), false)); err != nil {
			return w.fail(err)
		}
		r.notef("%s: added container %q carrying only the preStop hook; Istio merges it into the sidecar it injects (--no-istio-stub: don't)", w, istioProxy)
		r.stubWarning(w)
	default:
		r.remarkf("%s: no %s container and --no-istio-stub: the proxy gets no preStop hook", w, istioProxy)
	}
	return nil
}

// sleepsAtLeast reports a preStop sleep hook of at least secs seconds.
func sleepsAtLeast(c *yaml.Node, secs int) bool {
	lc, _ := lookup(c, "lifecycle")
	ps, _ := lookup(lc, "preStop")
	sl, _ := lookup(ps, "sleep")
	if ps == nil || len(ps.Content) != 2 {
		return false
	}
	n, err := strconv.Atoi(scalarAt(sl, "seconds"))
	return err == nil && n >= secs
}

// budget returns how long the wrap mode of container c may take to
// terminate, in whole seconds: drain deadline + stop timeout + 3s to stop
// the proxy, from the flags, the container's environment or the defaults.
// ok is false when a limit is 0 (none), so there is no bound.
func (r *run) budget(w *workload, c container) (secs int, ok bool, why string, err error) {
	deadline, err := r.durationEnv(w, c, "ENVOY_LIFECYCLE_DRAIN_DEADLINE", r.o.DrainDeadline, defaultDrainDeadline)
	if err != nil {
		return 0, false, "", err
	}
	stop, err := r.durationEnv(w, c, "ENVOY_LIFECYCLE_STOP_TIMEOUT", r.o.StopTimeout, defaultStopTimeout)
	if err != nil {
		return 0, false, "", err
	}
	drain := true
	if v, set, _, err := env(c.node, "ENVOY_LIFECYCLE_DRAIN"); err != nil {
		return 0, false, "", w.fail(err)
	} else if set && v != "" {
		if drain, err = strconv.ParseBool(v); err != nil {
			return 0, false, "", w.fail(shapeErrorf(c.node, "container %q: env ENVOY_LIFECYCLE_DRAIN=%q: not a boolean (valid: true, false)", c.name, v))
		}
	}
	if (drain && deadline == 0) || stop == 0 {
		return 0, false, "", nil
	}
	secs = seconds(stop) + seconds(quitBudget)
	why = fmt.Sprintf("stop timeout %s + %s to stop the proxy", stop, quitBudget)
	if drain {
		secs += seconds(deadline)
		why = fmt.Sprintf("drain deadline %s + %s", deadline, why)
	}
	return secs, true, why, nil
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	s := int(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// durationEnv returns flag when set, else the container's literal value of
// variable name, else def.
func (r *run) durationEnv(w *workload, c container, name string, flag, def time.Duration) (time.Duration, error) {
	if flag != 0 {
		return flag, nil
	}
	v, set, indirect, err := env(c.node, name)
	switch {
	case err != nil:
		return 0, w.fail(err)
	case indirect:
		r.remarkf("%s: container %q: %s comes from valueFrom, so the drain budget assumes its default, %s", w, c.name, name, def)
		return def, nil
	case !set || v == "":
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, w.fail(shapeErrorf(c.node, "container %q: env %s=%q: not a duration (valid: a duration such as 500ms, 30s or 2m)", c.name, name, v))
	}
	return d, nil
}

// wrapCommand prefixes the container's command with the wrapper. It
// reports whether the container runs the copied binary (and so needs the
// volume), false when it already runs an envoy-lifecycle of its own.
func (r *run) wrapCommand(w *workload, c container) (bool, error) {
	r.usedEntrypoints[c.name] = true
	node, err := lookup(c.node, "command")
	if err != nil {
		return false, w.fail(err)
	}
	var cmd []string
	if node != nil && !isNull(node) {
		if node.Kind != yaml.SequenceNode {
			return false, w.fail(shapeErrorf(node, "container %q: command: want a list, got %s", c.name, describe(node)))
		}
		for _, it := range node.Content {
			if it.Kind != yaml.ScalarNode || isNull(it) {
				return false, w.fail(shapeErrorf(it, "container %q: command: want strings, got %s", c.name, describe(it)))
			}
			cmd = append(cmd, it.Value)
		}
	}
	switch {
	case len(cmd) >= 2 && cmd[0] == wrapperPath && cmd[1] == "--":
		return true, nil
	case len(cmd) >= 1 && path.Base(cmd[0]) == "envoy-lifecycle":
		r.remarkf("%s: container %q already runs %s: its command is left as it is", w, c.name, cmd[0])
		return false, nil
	}
	if len(cmd) == 0 {
		ep := r.o.Entrypoints[c.name]
		if ep == nil {
			ep = r.o.Entrypoint
		}
		if len(ep) == 0 {
			return false, w.errorf(c.node, "container %q has no command, so inject cannot tell what its image runs: "+
				"write the image's ENTRYPOINT (and CMD) as command, or pass --entrypoint %s=CMD", c.name, c.name)
		}
		setAfter(c.node, "command", strings2seq(append([]string{wrapperPath, "--"}, ep...)), "image")
		return true, nil
	}
	pre := []*yaml.Node{str(wrapperPath), str("--")}
	if len(node.Content) > 0 {
		for _, p := range pre {
			p.Style = node.Content[0].Style & (yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle)
		}
	}
	node.Content = append(pre, node.Content...)
	return true, nil
}

// setWrapEnv points the wrapper at the proxy. Variables already set are
// kept; the drain settings given as flags are written over, and so is
// NEVER_KILL_ISTIO=true (istio) or NEVER_KILL_ENVOY=true (envoy) when the
// proxy is a native sidecar: kubelet stops it after the app, and a native
// sidecar that quits is restarted.
func (r *run) setWrapEnv(c container, adminPort int, istio, native bool) error {
	if err := setEnv(c.node, "ENVOY_ADMIN_API", fmt.Sprintf("http://127.0.0.1:%d", adminPort), true); err != nil {
		return err
	}
	if istio {
		if err := setEnv(c.node, "ISTIO_QUIT_API", fmt.Sprintf("http://127.0.0.1:%d", istioAgentPort), true); err != nil {
			return err
		}
	}
	if native {
		never := "NEVER_KILL_ENVOY"
		if istio {
			never = "NEVER_KILL_ISTIO"
		}
		if err := setEnv(c.node, never, "true", false); err != nil {
			return err
		}
	}
	if r.o.DrainDeadline != 0 {
		if err := setEnv(c.node, "ENVOY_LIFECYCLE_DRAIN_DEADLINE", r.o.DrainDeadline.String(), false); err != nil {
			return err
		}
	}
	if r.o.StopTimeout != 0 {
		if err := setEnv(c.node, "ENVOY_LIFECYCLE_STOP_TIMEOUT", r.o.StopTimeout.String(), false); err != nil {
			return err
		}
	}
	return nil
}

// mountBinary mounts the volume read-only in the app container.
func mountBinary(c *yaml.Node) error {
	mounts, err := seqAt(c, "volumeMounts", "volumeMounts", true)
	if err != nil {
		return err
	}
	for _, m := range mounts.Content {
		if m.Kind == yaml.MappingNode && scalarAt(m, "name") == volumeName {
			return nil
		}
	}
	mounts.Content = append(mounts.Content, obj(
		field{"name", str(volumeName)},
		field{"mountPath", str(mountPath)},
		field{"readOnly", boolean(true)},
	))
	return nil
}

func boolean(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

// addInstall adds the emptyDir and the init container that copies the
// binary into it. An existing volume or init container of that name is
// kept as it is.
func (r *run) addInstall(w *workload, spec *yaml.Node) error {
	if err := addEmptyDir(w, spec, volumeName); err != nil {
		return err
	}

	inits, err := seqAt(spec, "initContainers", "initContainers", false)
	if err != nil {
		return w.fail(err)
	}
	if inits == nil {
		inits = sequence()
		setBefore(spec, "initContainers", inits, "containers")
	}
	if c, err := named(inits, installName, "initContainers"); err != nil {
		return w.fail(err)
	} else if c != nil {
		return nil
	}
	inits.Content = append(inits.Content, obj(
		field{"name", str(installName)},
		field{"image", str(r.image())},
		field{"args", strings2seq([]string{"install", installPath})},
		field{"volumeMounts", sequence(obj(field{"name", str(volumeName)}, field{"mountPath", str(installPath)}))},
		field{"securityContext", restricted(true)},
	))
	return nil
}

func (r *run) image() string {
	if r.o.Image == "" {
		return DefaultImage
	}
	return r.o.Image
}

// restricted is a container securityContext that passes the "restricted"
// Pod Security Standard, for the containers inject adds.
func restricted(readOnlyRoot bool) *yaml.Node {
	sc := obj(
		field{"allowPrivilegeEscalation", boolean(false)},
		field{"capabilities", obj(field{"drop", strings2seq([]string{"ALL"})})},
	)
	if readOnlyRoot {
		sc.Content = append(sc.Content, str("readOnlyRootFilesystem"), boolean(true))
	}
	sc.Content = append(sc.Content,
		str("runAsNonRoot"), boolean(true),
		str("seccompProfile"), obj(field{"type", str("RuntimeDefault")}))
	return sc
}

// checkGrace compares the pod's terminationGracePeriodSeconds with budget
// plus GraceMargin, and raises it (FixGrace) or fails.
func (r *run) checkGrace(w *workload, spec *yaml.Node, budget int, why string) (int, error) {
	grace, node, err := gracePeriod(spec)
	if err != nil {
		return 0, w.fail(err)
	}
	need := budget + seconds(GraceMargin)
	if grace >= need {
		return grace, nil
	}
	was := strconv.Itoa(grace)
	if node == nil {
		was = fmt.Sprintf("unset (%d)", defaultGrace)
	}
	if !r.o.FixGrace {
		return 0, w.errorf(node, "terminationGracePeriodSeconds is %s, shorter than the drain budget, %ds (%s), plus a %s margin: set it to %d or more, or drop --no-fix-grace",
			was, budget, why, GraceMargin, need)
	}
	set(spec, "terminationGracePeriodSeconds", integer(need))
	r.notef("%s: terminationGracePeriodSeconds %s → %d: the drain budget is %ds (%s), plus a %s margin", w, was, need, budget, why, GraceMargin)
	return need, nil
}

// manage runs the shutdown-manager preset on one workload.
func (r *run) manage(w *workload) (bool, error) {
	spec, err := w.podSpec()
	if err != nil {
		return false, err
	}
	cs, err := containers(spec)
	if err != nil {
		return false, w.fail(err)
	}
	proxy, ok := r.proxy(cs)
	if !ok {
		r.skipNoProxy(w, cs)
		return false, nil
	}
	deadline := r.o.DrainDeadline
	if deadline == 0 {
		deadline = defaultDrainDeadline
	}
	mgr, hasMgr := find(cs, managerName)
	// Hooks that already call the manager are kept as they are (with
	// their headers and deadlines); the budget counts the proxy's.
	proxyHook, keepProxy := managerHook(proxy.node, "/shutdown")
	mgrHook, keepMgr := "", false
	if hasMgr {
		mgrHook, keepMgr = managerHook(mgr.node, "/waitforshutdown")
	}
	if keepProxy {
		if d, ok := hookDeadline(proxyHook); ok {
			deadline = d
		}
	}
	// The hooks carry the deadline so that the budget checked here is the
	// one the manager uses, whatever its own default. After its hook
	// returns, the manager gets SIGTERM and gives answers in flight up to
	// its --shutdown-timeout (shutdownmgr/README.md, "Sizing
	// terminationGracePeriodSeconds").
	secs := seconds(deadline)
	budget := secs + seconds(shutdownmgr.DefaultShutdownTimeout) + seconds(quitBudget)
	why := fmt.Sprintf("hook deadline %ds + the manager's --shutdown-timeout %s + %s to exit", secs, shutdownmgr.DefaultShutdownTimeout, quitBudget)
	if _, err := r.checkGrace(w, spec, budget, why); err != nil {
		return false, err
	}
	query := "?deadline=" + strconv.Itoa(secs)
	wait := httpGetHandler("/waitforshutdown"+query, managerPort)
	if !hasMgr {
		if err := addEmptyDir(w, spec, managerVolume); err != nil {
			return false, err
		}
		args := []string{"shutdown-manager"}
		if r.o.AdminPort != 0 && r.o.AdminPort != envoyAdminPort {
			args = append(args, "--envoy-admin-port="+strconv.Itoa(r.o.AdminPort))
		}
		args = append(args, "--state-file="+managerStateFile, "--ready-file="+managerReadyFile)
		if err := addContainer(spec, obj(
			field{"name", str(managerName)},
			field{"image", str(r.image())},
			field{"args", strings2seq(args)},
			field{"ports", sequence(obj(field{"name", str(managerPortName)}, field{"containerPort", integer(managerPort)}))},
			field{"volumeMounts", sequence(obj(field{"name", str(managerVolume)}, field{"mountPath", str(managerDir)}))},
			field{"securityContext", restricted(false)},
			field{"lifecycle", obj(field{"preStop", wait})},
		)); err != nil {
			return false, w.fail(err)
		}
	} else {
		if keepMgr {
			r.remarkf("%s: container %q: kept its preStop hook (GET %s)", w, managerName, mgrHook)
		} else if replaced, err := setPreStop(mgr.node, wait); err != nil {
			return false, w.fail(fmt.Errorf("container %q: %w", managerName, err))
		} else if replaced {
			r.notef("%s: container %q: replaced its preStop hook", w, managerName)
		}
		if err := r.managerFiles(w, spec, mgr); err != nil {
			return false, err
		}
	}
	if keepProxy {
		r.remarkf("%s: container %q: kept its preStop hook (GET %s), which calls the shutdown manager", w, proxy.name, proxyHook)
		return true, nil
	}
	replaced, err := setPreStop(proxy.node, httpGetHandler("/shutdown"+query, managerPort))
	if err != nil {
		return false, w.fail(fmt.Errorf("container %q: %w", proxy.name, err))
	}
	if replaced {
		r.notef("%s: container %q: replaced its preStop hook", w, proxy.name)
	}
	return true, nil
}

// managerHook returns the path of the container's preStop httpGet when it
// calls the manager's endpoint (path "/shutdown" or "/waitforshutdown",
// with or without a query).
func managerHook(c *yaml.Node, endpoint string) (string, bool) {
	lc, _ := lookup(c, "lifecycle")
	ps, _ := lookup(lc, "preStop")
	get, _ := lookup(ps, "httpGet")
	p := scalarAt(get, "path")
	if p == endpoint || strings.HasPrefix(p, endpoint+"?") {
		return p, true
	}
	return "", false
}

// hookDeadline reads the ?deadline= of a manager hook's path: whole
// seconds, or a duration such as 40s.
func hookDeadline(p string) (time.Duration, bool) {
	_, q, _ := strings.Cut(p, "?")
	v, err := url.ParseQuery(q)
	if err != nil || v.Get("deadline") == "" {
		return 0, false
	}
	d := v.Get("deadline")
	if n, err := strconv.Atoi(d); err == nil && n > 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := time.ParseDuration(d); err == nil && t > 0 {
		return t, true
	}
	return 0, false
}

// addEmptyDir adds the emptyDir volume name to the pod, unless it is there.
// A volume of that name that is not an emptyDir is an error.
func addEmptyDir(w *workload, spec *yaml.Node, name string) error {
	vols, err := seqAt(spec, "volumes", "volumes", true)
	if err != nil {
		return w.fail(err)
	}
	v, err := named(vols, name, "volumes")
	if err != nil {
		return w.fail(err)
	}
	if v == nil {
		vols.Content = append(vols.Content, obj(field{"name", str(name)}, field{"emptyDir", mapping()}))
	} else if ed, _ := lookup(v, "emptyDir"); ed == nil {
		return w.errorf(v, "volume %q is already there and is not an emptyDir", name)
	}
	return nil
}

// managerFiles puts an existing manager container's state and ready files
// on the emptyDir: it mounts the volume (at managerDir, unless it is
// mounted already) and sets SHUTDOWN_MANAGER_STATE_FILE and
// SHUTDOWN_MANAGER_READY_FILE there, unless the container chooses the
// files itself (with those variables, or --state-file and --ready-file).
func (r *run) managerFiles(w *workload, spec *yaml.Node, mgr container) error {
	mounts, err := seqAt(mgr.node, "volumeMounts", "volumeMounts", true)
	if err != nil {
		return w.fail(fmt.Errorf("container %q: %w", managerName, err))
	}
	dir := ""
	for _, m := range mounts.Content {
		if m.Kind != yaml.MappingNode {
			return w.fail(shapeErrorf(m, "container %q: volumeMounts: want a mapping per item, got %s", managerName, describe(m)))
		}
		switch {
		case scalarAt(m, "name") == managerVolume:
			dir = scalarAt(m, "mountPath")
			if err := addEmptyDir(w, spec, managerVolume); err != nil {
				return err
			}
		case path.Clean(scalarAt(m, "mountPath")) == managerDir && isEmptyDir(spec, scalarAt(m, "name")):
			dir = managerDir // an emptyDir of the pod's own (examples/03)
		case path.Clean(scalarAt(m, "mountPath")) == managerDir:
			return w.errorf(m, "container %q already mounts volume %q at %s, where inject mounts %q: mount %q there yourself, or free the path",
				managerName, scalarAt(m, "name"), managerDir, managerVolume, managerVolume)
		}
	}
	if dir == "" {
		if err := addEmptyDir(w, spec, managerVolume); err != nil {
			return err
		}
		dir = managerDir
		mounts.Content = append(mounts.Content, obj(field{"name", str(managerVolume)}, field{"mountPath", str(managerDir)}))
	}
	argv, err := commandLine(mgr.node)
	if err != nil {
		return w.fail(fmt.Errorf("container %q: %w", managerName, err))
	}
	for _, f := range []struct{ flag, env, file string }{
		{"state-file", "SHUTDOWN_MANAGER_STATE_FILE", "state"},
		{"ready-file", "SHUTDOWN_MANAGER_READY_FILE", "ok"},
	} {
		if hasFlag(argv, f.flag) {
			continue
		}
		if err := setEnv(mgr.node, f.env, path.Join(dir, f.file), true); err != nil {
			return w.fail(fmt.Errorf("container %q: %w", managerName, err))
		}
	}
	return nil
}

// isEmptyDir reports whether the pod has an emptyDir volume named name.
func isEmptyDir(spec *yaml.Node, name string) bool {
	vols, _ := lookup(spec, "volumes")
	v, _ := named(vols, name, "volumes")
	ed, _ := lookup(v, "emptyDir")
	return ed != nil
}

// commandLine returns the container's command and args, the strings only.
func commandLine(c *yaml.Node) ([]string, error) {
	var argv []string
	for _, key := range []string{"command", "args"} {
		seq, err := seqAt(c, key, key, false)
		if err != nil {
			return nil, err
		}
		if seq == nil {
			continue
		}
		for _, it := range seq.Content {
			if it.Kind == yaml.ScalarNode {
				argv = append(argv, it.Value)
			}
		}
	}
	return argv, nil
}

// hasFlag reports whether argv sets the Go flag name (-name, --name,
// -name=v or --name=v).
func hasFlag(argv []string, name string) bool {
	for _, a := range argv {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
