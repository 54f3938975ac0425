package lifecycle

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/termlog"
)

// Message is the termination message: exit code and cause, the drain and the
// quit, in one line, with the secrets of any URL in it hidden.
func (o Outcome) Message() string {
	msg := fmt.Sprintf("envoy-lifecycle exit %d: %s", o.Code, o.Why)
	if d := o.Drained; d != nil {
		delay := ""
		if d.Quiet != "" {
			// The adaptive delay's outcome: what a rollout comparison reads.
			delay = fmt.Sprintf("delay auto %v: %s; ", d.Delayed.Round(time.Millisecond), d.Quiet)
		}
		msg += fmt.Sprintf("; drain %v (%s%s, %d connections left)", d.Took.Round(time.Millisecond), delay, d.Reason, d.Remaining)
	}
	switch s := o.Stopped; {
	case s == nil:
	case s.Skipped != "":
		msg += "; proxy left running: " + s.Skipped
	case s.Method == "" && s.Err == nil:
		// Nothing to stop: local development.
	case s.Err != nil && s.Method == "":
		msg += fmt.Sprintf("; proxy NOT stopped: %v", s.Err)
	default:
		msg += "; proxy stopped via " + s.Method
		if s.Gone {
			msg += " (gone)"
		}
	}
	// The user's URLs (ENVOY_KILL_API, GENERIC_QUIT_ENDPOINTS...) reach it
	// through errors, and kubectl describe pod shows it to anyone who can
	// read the pod.
	return termlog.OneLine(envoy.RedactText(msg))
}

// WriteMessage writes o.Message to path through termlog.Write, which never
// follows a symlink, cuts data or blocks past termlog.Timeout. A write that
// fails is a warning, except the default path missing outside Kubernetes,
// which is the normal case on a developer's machine. An empty path writes
// nothing.
func WriteMessage(path string, o Outcome, log hclog.Logger) {
	err := termlog.Write(path, o.Message())
	switch {
	case err == nil:
	case path == termlog.Default && errors.Is(err, termlog.ErrMissing):
		log.Debug("no termination log written", "path", path, "error", err)
	default:
		log.Warn("termination log not written", "path", path, "error", err)
	}
}
