package inject

import (
	"errors"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// istioProxy is the name of Istio's sidecar container.
const istioProxy = "istio-proxy"

// applyConfig sets each configured container's preStop exec command on
// the workloads of one document, as the injector script does. Missing
// containers are kept to report at the end, each with its line in the
// config; other errors stop the run.
func (r *run) applyConfig(ws []*workload) error {
	for _, e := range r.o.Config.entries {
		for _, w := range ws {
			if w.kind != e.kind || w.name != e.name {
				continue
			}
			r.matched[e] = true
			missing, err := r.hookWorkload(w, e)
			if err != nil {
				return err
			}
			r.errs = append(r.errs, missing...)
		}
	}
	return nil
}

// finishConfig reports every entry whose resource is not in the manifest,
// and the missing containers.
func (r *run) finishConfig() error {
	cfg := r.o.Config
	for _, e := range cfg.entries {
		if !r.matched[e] {
			r.errs = append(r.errs, &Error{Code: ExitMismatch, File: cfg.file, Line: e.line,
				Msg: fmt.Sprintf("%s %q is not in %s", strings.ToLower(e.kind), e.name, r.file)})
		}
	}
	return errors.Join(r.errs...)
}

// hookWorkload applies entry e to workload w. Containers that are missing
// come back as errors to report; other errors stop the run.
func (r *run) hookWorkload(w *workload, e *hookEntry) (missing []error, err error) {
	spec, err := w.podSpec()
	if err != nil {
		return nil, err
	}
	cs, err := containers(spec)
	if err != nil {
		return nil, w.fail(err)
	}
	for _, h := range e.hooks {
		handler := execHandler(h.command)
		cmd, _ := lookup(handler, "exec")
		cmd, _ = lookup(cmd, "command")
		adoptStyle(h.style, cmd)
		if c, ok := find(cs, h.container); ok {
			replaced, err := setPreStop(c.node, handler)
			if err != nil {
				return nil, w.fail(fmt.Errorf("container %q: %w", c.name, err))
			}
			if replaced {
				r.notef("%s: container %q: replaced its preStop hook", w, c.name)
			}
			continue
		}
		where := fmt.Sprintf("%s %q (%s:%d) has no container %q (containers: %s)",
			strings.ToLower(e.kind), e.name, w.file, w.line(w.obj.Line), h.container, names(cs))
		if h.container != istioProxy {
			missing = append(missing, &Error{Code: ExitMismatch, File: r.o.Config.file, Line: h.line, Msg: where})
			continue
		}
		// A native sidecar pod gets the stub as a native sidecar: see
		// istioStub.
		native := nativeSidecarOn(w)
		stub := "an istio-proxy container"
		if native {
			stub = "an istio-proxy init container"
		}
		inits, err := seqAt(spec, "initContainers", "initContainers", false)
		if err != nil {
			return nil, w.fail(err)
		}
		decl, err := named(inits, istioProxy, "initContainers")
		if err != nil {
			return nil, w.fail(err)
		}
		switch {
		case decl != nil:
			// Not a native sidecar, or containers() would have found it.
			where += "; istio-proxy is an init container without restartPolicy: Always, which cannot have a preStop hook"
		case !r.o.IstioStub:
			where += "; without --no-istio-stub inject adds " + stub + " for Istio to merge"
		case istioOff(w):
			where += "; Istio injection is off for this pod (sidecar.istio.io/inject: \"false\"), so an istio-proxy stub would not be merged"
		case native:
			if inits == nil {
				inits = sequence()
				setBefore(spec, "initContainers", inits, "containers")
			}
			inits.Content = append(inits.Content, istioStub(handler, true))
			r.notef("%s: added init container %q with restartPolicy: Always, carrying only the preStop hook; "+
				"sidecar.istio.io/nativeSidecar is \"true\", and Istio merges it into the native sidecar it injects (--no-istio-stub: don't)", w, istioProxy)
			r.stubWarning(w)
			cs = append(cs, container{name: istioProxy, sidecar: true})
			continue
		default:
			if err := addContainer(spec, istioStub(handler, false)); err != nil {
				return nil, w.fail(err)
			}
			r.notef("%s: added container %q carrying only the preStop hook; Istio merges it into the sidecar it injects (--no-istio-stub: don't)", w, istioProxy)
			r.stubWarning(w)
			cs = append(cs, container{name: istioProxy})
			continue
		}
		missing = append(missing, &Error{Code: ExitMismatch, File: r.o.Config.file, Line: h.line, Msg: where})
	}
	return missing, nil
}

// istioStub is a container named istio-proxy that carries only a preStop
// hook. Istio's injector merges a declared istio-proxy container into the
// sidecar it injects; "image: auto" is the image Istio's injector fills in.
//
// With native, the stub is a native sidecar, for the initContainers of a
// pod annotated sidecar.istio.io/nativeSidecar: "true". Istio's template
// then injects istio-proxy as an init container with its own preStop
// (pilot-agent request POST drain; manifests/charts/istio-control/
// istio-discovery/files/injection-template.yaml), and the webhook re-applies
// the pod's declared init container of that name on top of it, dropping
// "image: auto" (reapplyOverwrittenContainers, the templatePod.Spec.
// InitContainers loop, in istio/istio pkg/kube/inject/webhook.go): so the
// stub's hook is the one that stays. A stub left in containers is only
// moved to initContainers by recent Istio versions (RunTemplate in
// pkg/kube/inject/inject.go); older ones re-apply overrides from the pod's
// initContainers only, and the template's preStop would win. Where the
// stub goes among the init containers does not matter: the webhook moves a
// native istio-proxy first (reorderPod in webhook.go).
func istioStub(preStop *yaml.Node, native bool) *yaml.Node {
	c := obj(
		field{"name", str(istioProxy)},
		field{"image", str("auto")},
	)
	if native {
		c.Content = append(c.Content, str("restartPolicy"), str("Always"))
	}
	c.Content = append(c.Content, str("lifecycle"), obj(field{"preStop", preStop}))
	return c
}

// stubWarning warns that a stub's "image: auto" needs Istio's injector,
// unless the pod template asks for injection itself.
func (r *run) stubWarning(w *workload) {
	meta := w.podMeta()
	for _, key := range []string{"labels", "annotations"} {
		m, _ := lookup(meta, key)
		if strings.EqualFold(scalarAt(m, "sidecar.istio.io/inject"), "true") {
			return
		}
	}
	r.notef("%s: warning: only Istio's injector fills in the stub's \"image: auto\": without injection on (namespace label istio-injection=enabled) the pod cannot start", w)
}

// istioOff reports a pod template labelled or annotated
// sidecar.istio.io/inject: "false".
func istioOff(w *workload) bool {
	meta := w.podMeta()
	for _, key := range []string{"labels", "annotations"} {
		m, _ := lookup(meta, key)
		if strings.EqualFold(scalarAt(m, "sidecar.istio.io/inject"), "false") {
			return true
		}
	}
	return false
}

// nativeSidecarOn reports a pod template annotated
// sidecar.istio.io/nativeSidecar: "true": Istio injects its proxy as a
// native sidecar (an init container with restartPolicy Always).
func nativeSidecarOn(w *workload) bool {
	m, _ := lookup(w.podMeta(), "annotations")
	return strings.EqualFold(scalarAt(m, "sidecar.istio.io/nativeSidecar"), "true")
}
