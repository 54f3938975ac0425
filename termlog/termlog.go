// Package termlog writes the one-line termination message that Kubernetes
// shows in kubectl describe pod (the container's terminationMessagePath).
//
// The file is outside input: a path from the environment, which may name a
// symlink, a FIFO or somebody's data. Write never follows a symlink, never
// writes to anything but a regular file, never truncates a file that already
// holds data, and never blocks for longer than its timeout.
package termlog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Default is where Kubernetes reads a container's termination message.
const Default = "/dev/termination-log"

// MaxBytes is the most kubelet reads of a termination message.
const MaxBytes = 4096

// Timeout bounds a write: a file on a hung network mount must not hold the
// wrapper's exit.
const Timeout = time.Second

// Errors of Write. Each is wrapped with the path.
var (
	ErrSymlink    = errors.New("is a symlink; not followed")
	ErrNotRegular = errors.New("is not a regular file")
	ErrNotEmpty   = errors.New("already holds data; not overwritten")
	ErrMissing    = errors.New("does not exist (only created when the path is not the default)")
	ErrTimeout    = errors.New("write timed out")
)

// Write writes msg, made one line, to path. The default path is never
// created: it exists only in a Kubernetes container (kubelet creates it
// empty), so a developer's machine is left alone. Any other path is created
// if missing. An empty path writes nothing.
func Write(path, msg string) error {
	return write(path, msg, Timeout)
}

func write(path, msg string, timeout time.Duration) error {
	if path == "" {
		return nil
	}
	done := make(chan error, 1)
	// The open and write run aside so that a hung file system costs at most
	// the timeout; the goroutine then ends with the process.
	go func() { done <- writeFile(path, OneLine(msg)+"\n") }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("termination log %s: %w after %v", path, ErrTimeout, timeout)
	}
}

func writeFile(path, line string) error {
	// O_NOFOLLOW refuses a symlink as the last element; O_NONBLOCK makes a
	// FIFO with no reader fail (ENXIO) instead of blocking forever. Neither
	// changes a write to a regular file.
	flags := os.O_WRONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	if path != Default {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("termination log %s %w", path, ErrSymlink)
	case errors.Is(err, syscall.ENXIO):
		return fmt.Errorf("termination log %s %w (a FIFO with no reader)", path, ErrNotRegular)
	case errors.Is(err, os.ErrNotExist) && path == Default:
		return fmt.Errorf("termination log %s %w", path, ErrMissing)
	case err != nil:
		return fmt.Errorf("cannot open termination log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat termination log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("termination log %s %w (%v)", path, ErrNotRegular, fi.Mode().Type())
	}
	// kubelet creates the file empty for each container; a file with data
	// in it is not ours to cut.
	if fi.Size() > 0 {
		return fmt.Errorf("termination log %s %w (%d bytes)", path, ErrNotEmpty, fi.Size())
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("cannot write termination log: %w", err)
	}
	return f.Close()
}

// OneLine makes msg a single line of at most MaxBytes-1 bytes: control
// characters (newlines included) become spaces, and a message cut short ends
// with "...".
func OneLine(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	const limit = MaxBytes - 1 // the newline
	if len(msg) <= limit {
		return msg
	}
	cut := limit - len("...")
	// Cut on a rune boundary.
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}
