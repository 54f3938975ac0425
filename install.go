package main

// The install subcommand: the presets' init container runs it to copy this
// binary into an emptyDir, since distroless images have no cp. The copy is
// a few lines over writeAtomic, which inject's in-place writes share, so
// it lives here rather than in a package of its own.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"envoy-lifecycle/inject"
)

// installName is the file name install writes in its directory.
const installName = "envoy-lifecycle"

// install copies the running executable to dir/envoy-lifecycle with mode
// 0755, through a temporary file and a rename, so a reader never sees half
// a binary.
func install(dir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the running executable: %w", err)
	}
	src, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("cannot open the running executable: %w", err)
	}
	defer src.Close()
	dst := filepath.Join(dir, installName)
	if err := writeAtomic(dst, 0o755, -1, 0, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	}, nil); err != nil {
		return "", err
	}
	return dst, nil
}

// runInstall is the "install DIR" subcommand: install, then one line on
// stderr. Exit codes: 0, 64 for a bad command line, 73 when the copy
// cannot be written, 70 when the executable cannot be read.
func runInstall(args []string, _, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "envoy-lifecycle install: usage: envoy-lifecycle install DIR (copies this binary to DIR/envoy-lifecycle)")
		return inject.ExitUsage
	}
	if fi, err := os.Stat(args[0]); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "envoy-lifecycle install: %s: not a directory\n", args[0])
		return inject.ExitCantCreate
	}
	dst, err := install(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "envoy-lifecycle install: "+err.Error())
		var we *writeError
		if errors.As(err, &we) {
			return inject.ExitCantCreate
		}
		return inject.ExitSoftware
	}
	fmt.Fprintln(stderr, "envoy-lifecycle install: installed "+dst)
	return inject.ExitOK
}

// writeError is a failure to write the output.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// writeAtomic writes path through a temporary file in its directory, which
// it syncs, chmods to perm (and chowns to uid, gid unless uid is -1) and
// renames over path. On failure the temporary file is removed and path is
// untouched. When the chown is refused, inPlace (if not nil) writes path
// instead, keeping its owner.
func writeAtomic(path string, perm os.FileMode, uid, gid int, fill func(io.Writer) error, inPlace func() error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return &writeError{fmt.Errorf("cannot write %s: %w", path, err)}
	}
	fallback := false
	defer func() {
		if err != nil || fallback {
			tmp.Close()
			os.Remove(tmp.Name())
		}
		if err != nil {
			err = &writeError{fmt.Errorf("cannot write %s: %w", path, err)}
		}
	}()
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			if inPlace == nil {
				return err
			}
			fallback = true
			return inPlace()
		}
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
