package inject

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// InstallName is the file name Install writes in its directory.
const InstallName = "envoy-lifecycle"

// Install copies the running executable to dir/envoy-lifecycle with mode
// 0755, through a temporary file and a rename, so a reader never sees half
// a binary. It is what the presets' init container runs: distroless images
// have no cp.
func Install(dir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the running executable: %w", err)
	}
	src, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("cannot open the running executable: %w", err)
	}
	defer src.Close()
	dst := filepath.Join(dir, InstallName)
	if err := writeAtomic(dst, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	}); err != nil {
		return "", err
	}
	return dst, nil
}

// InstallMain is the "install DIR" subcommand: Install, then one line on
// stderr. Exit codes: 0, 64 for a bad command line, 73 when the copy
// cannot be written, 70 when the executable cannot be read.
func InstallMain(args []string, _, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "envoy-lifecycle install: usage: envoy-lifecycle install DIR (copies this binary to DIR/envoy-lifecycle)")
		return ExitUsage
	}
	switch fi, err := os.Stat(args[0]); {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "envoy-lifecycle install: %s: no such directory (create it, or mount an emptyDir there)\n", args[0])
		return ExitCantCreate
	case err != nil:
		fmt.Fprintf(stderr, "envoy-lifecycle install: cannot use %s: %v\n", args[0], errors.Unwrap(err))
		return ExitCantCreate
	case !fi.IsDir():
		fmt.Fprintf(stderr, "envoy-lifecycle install: %s: not a directory\n", args[0])
		return ExitCantCreate
	}
	dst, err := Install(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "envoy-lifecycle install: "+err.Error())
		if isWriteErr(err) {
			return ExitCantCreate
		}
		return ExitSoftware
	}
	fmt.Fprintln(stderr, "envoy-lifecycle install: installed "+dst)
	return ExitOK
}
