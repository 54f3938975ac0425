//go:build !linux

package wrapper

import (
	"errors"
	"syscall"
)

const (
	sigDFL = 0
	sigIGN = 1
)

// Elsewhere than Linux no disposition is read or set, and no terminal is
// handed over.
func disposition(syscall.Signal) (uintptr, error)  { return 0, errors.ErrUnsupported }
func setDisposition(syscall.Signal, uintptr) error { return errors.ErrUnsupported }
func foreground(uintptr) (int, error)              { return 0, errors.ErrUnsupported }
func setForeground(uintptr, int) error             { return errors.ErrUnsupported }
func getsid() (int, error)                         { return 0, errors.ErrUnsupported }
func keySignals(uintptr) bool                      { return true }
