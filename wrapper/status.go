package wrapper

import (
	"fmt"
	"syscall"
)

// Status is how a child ended, as wait4 reported it.
type Status struct {
	Pid        int                // the reaped process
	WaitStatus syscall.WaitStatus // how it ended; see ExitCode
	Rusage     syscall.Rusage     // its resource usage, with the descendants it waited for
}

// Code returns ExitCode(s.WaitStatus).
func (s Status) Code() int {
	return ExitCode(s.WaitStatus)
}

// String describes the status like a shell: "exit status 3" or "killed by
// signal terminated".
func (s Status) String() string {
	ws := s.WaitStatus
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		str := "killed by signal " + ws.Signal().String()
		if ws.CoreDump() {
			str += " (core dumped)"
		}
		return str
	case ws.Stopped():
		return "stopped by signal " + ws.StopSignal().String()
	case ws.Continued():
		return "continued"
	}
	return fmt.Sprintf("unknown wait status %#x", uint32(ws))
}

// exitCodeUnknown is what ExitCode gives for a status that is neither an
// exit nor a death or stop by signal: a failure, never success, and clear of
// the 126, 127 and 128+n ranges.
const exitCodeUnknown = 1

// ExitCode turns a wait status into the exit code a shell would report:
//   - exited with n: n;
//   - killed by signal n: 128+n (tini and sh do the same; Go's
//     ProcessState.ExitCode gives -1, which os.Exit turns into 255);
//   - stopped by signal n: 128+n, as bash reports a stopped job (the reaper
//     does not ask wait4 for stops, so this only matters to other callers);
//   - anything else, such as "continued": 1.
func ExitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	case ws.Stopped():
		return 128 + int(ws.StopSignal())
	}
	return exitCodeUnknown
}
