// Command orphanapp is the app of image_test.go, built static for a root
// filesystem with no shell, no libc and no /dev: only /proc.
//
//	orphanapp CODE   leave an orphan, print "orphan PID", wait until whoever
//	                 adopted it has reaped it, then exit CODE (99 if it is
//	                 still a zombie after 10s, 98 on other failures)
//	orphanapp spawn  start a child that exits at once, print its pid and exit
//	                 without waiting for it
//	orphanapp exit0  exit 0
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: orphanapp CODE|spawn|exit0")
		os.Exit(98)
	}
	switch os.Args[1] {
	case "exit0":
		os.Exit(0)
	case "spawn":
		p, err := start("exit0", os.Stderr) // not our stdout: the parent reads it to EOF
		if err != nil {
			fail(err)
		}
		fmt.Println(p.Pid)
		os.Exit(0) // without waiting: the child is reparented when we exit
	}
	code, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fail(err)
	}
	pid, err := spawnOrphan()
	if err != nil {
		fail(err)
	}
	fmt.Println("orphan", pid)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + pid); errors.Is(err, fs.ErrNotExist) {
			os.Exit(code)
		}
		time.Sleep(2 * time.Millisecond) // polling /proc against the deadline above
	}
	fmt.Fprintln(os.Stderr, "orphan", pid, "was never reaped")
	os.Exit(99)
}

// spawnOrphan runs "orphanapp spawn" and returns the pid it prints: its
// child, orphaned as soon as it exits. No os/exec: it opens /dev/null for a
// nil stdin, and there is no /dev.
func spawnOrphan() (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer r.Close()
	p, err := start("spawn", w)
	w.Close()
	if err != nil {
		return "", err
	}
	out, err := io.ReadAll(r)
	st, werr := p.Wait()
	if err == nil {
		err = werr
	}
	pid := strings.TrimSpace(string(out))
	if err == nil && (!st.Success() || pid == "") {
		err = fmt.Errorf("spawn: %v, printed %q", st, out)
	}
	return pid, err
}

func start(mode string, stdout *os.File) (*os.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// All three standard fds: a Go program started without them opens
	// /dev/null, and there is none here.
	return os.StartProcess(self, []string{self, mode}, &os.ProcAttr{Files: []*os.File{os.Stdin, stdout, os.Stderr}})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "orphanapp:", err)
	os.Exit(98)
}
