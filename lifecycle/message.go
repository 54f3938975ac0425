package lifecycle

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultTerminationLog is where Kubernetes reads a container's termination
// message.
const DefaultTerminationLog = "/dev/termination-log"

// Message is the termination message: exit code and cause, the drain and the
// quit, in one line.
func (o Outcome) Message() string {
	msg := fmt.Sprintf("envoy-lifecycle exit %d: %s", o.Code, o.Why)
	if d := o.Drained; d != nil {
		msg += fmt.Sprintf("; drain %v (%s, %d connections left)", d.Took.Round(time.Millisecond), d.Reason, d.Remaining)
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
	return msg
}

// WriteMessage writes o.Message to path, where Kubernetes shows it in
// kubectl describe pod. It is best effort: a missing or read-only default
// path is logged at debug, a path the user chose at warn. An empty path writes nothing.
func WriteMessage(path string, o Outcome, log hclog.Logger) {
	if path == "" {
		return
	}
	flags := os.O_WRONLY | os.O_TRUNC
	// The default path exists only in a Kubernetes container: never create
	// it on a developer's machine. A path the user chose is created.
	if path != DefaultTerminationLog {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		if path != DefaultTerminationLog {
			// A path the user chose that can't be written is a mistake to see.
			log.Warn("cannot write the termination log", "path", path, "error", err)
			return
		}
		log.Debug("no termination log written", "path", path, "error", err)
		return
	}
	defer f.Close()
	fmt.Fprintln(f, o.Message())
}
