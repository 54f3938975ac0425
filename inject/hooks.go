package inject

import (
	"errors"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// istioProxy is the name of Istio's sidecar container.
const istioProxy = "istio-proxy"

// applyConfig sets each configured container's preStop exec command, as
// the injector script does. Every entry whose resource or container is
// missing is reported, each with its line in the config.
func (r *run) applyConfig(ws []*workload) error {
	cfg := r.o.Config
	var errs []error
	for _, e := range cfg.entries {
		matched := false
		for _, w := range ws {
			if w.kind != e.kind || w.name != e.name {
				continue
			}
			matched = true
			missing, err := r.hookWorkload(w, e)
			if err != nil {
				return err
			}
			errs = append(errs, missing...)
		}
		if !matched {
			errs = append(errs, &Error{Code: ExitMismatch, File: cfg.file, Line: e.line,
				Msg: fmt.Sprintf("%s %q is not in %s", strings.ToLower(e.kind), e.name, r.file)})
		}
	}
	return errors.Join(errs...)
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
		switch {
		case h.container != istioProxy:
		case !r.o.IstioStub:
			where += "; without --no-istio-stub inject adds an istio-proxy container for Istio to merge"
		case istioOff(w):
			where += "; Istio injection is off for this pod (sidecar.istio.io/inject: \"false\"), so an istio-proxy stub would not be merged"
		default:
			if err := addContainer(spec, istioStub(handler)); err != nil {
				return nil, w.fail(err)
			}
			r.notef("%s: added container %q carrying only the preStop hook; Istio merges it into the sidecar it injects (--no-istio-stub: don't)", w, istioProxy)
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
func istioStub(preStop *yaml.Node) *yaml.Node {
	return obj(
		field{"name", str(istioProxy)},
		field{"image", str("auto")},
		field{"lifecycle", obj(field{"preStop", preStop})},
	)
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
