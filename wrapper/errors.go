package wrapper

import (
	"errors"
	"io/fs"
	"os/exec"
	"syscall"
)

// Exit codes for a command that could not be started, as a shell reports
// them.
const (
	// ExitNotExecutable: found, but exec failed (EACCES, ENOEXEC, a
	// directory, a bad working directory, …).
	ExitNotExecutable = 126
	// ExitNotFound: not in PATH, or the path does not exist.
	ExitNotFound = 127
)

// StartError is returned by Start when the command could not be started.
type StartError struct {
	Command string // as given in Options.Command
	Err     error
}

var _ interface{ ExitStatus() int } = (*StartError)(nil)

// Error implements error.
func (e *StartError) Error() string {
	return "cannot start " + e.Command + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *StartError) Unwrap() error { return e.Err }

// ExitStatus returns ExitNotFound (127) when the command does not exist and
// ExitNotExecutable (126) for any other failure.
func (e *StartError) ExitStatus() int {
	var pe *fs.PathError
	if errors.As(e.Err, &pe) && pe.Op == "chdir" {
		// The command may well exist; the working directory does not.
		return ExitNotExecutable
	}
	if errors.Is(e.Err, exec.ErrNotFound) || errors.Is(e.Err, syscall.ENOENT) {
		return ExitNotFound
	}
	return ExitNotExecutable
}
