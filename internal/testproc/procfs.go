package testproc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStat returns the state ('R', 'S', 'Z'…) and parent pid of pid from
// /proc.
func ProcStat(pid int) (state byte, ppid int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) S ppid …"; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("bad /proc/%d/stat: %q", pid, b)
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err
}

// NoZombies reports whether pid is gone and no child of parent is a zombie,
// with a message saying which are; use it with Poll or WaitFor.
func NoZombies(pid, parent int) (bool, string) {
	if _, _, err := ProcStat(pid); err == nil {
		return false, fmt.Sprintf("process %d still exists", pid)
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err.Error()
	}
	var zombies []int
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		state, ppid, err := ProcStat(p)
		if err == nil && ppid == parent && state == 'Z' {
			zombies = append(zombies, p)
		}
	}
	return len(zombies) == 0, fmt.Sprintf("zombie children of %d: %v", parent, zombies)
}
