package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"envoy-lifecycle/inject/injecttest"
)

// inject times the built binary's inject --preset envoy on the large
// manifest of issue 13 (10,593 documents, 5 MB): wall and CPU time and
// peak memory of the process.
func (b *bench) inject() {
	const label = "inject --preset envoy, 10,593 documents (5 MB)"
	src := injecttest.Large()
	in := filepath.Join(b.dir, "large.yaml")
	if err := os.WriteFile(in, src, 0o644); err != nil {
		row(label, "error: "+err.Error(), "")
		return
	}
	cmd := exec.Command(b.bin, "inject", "--preset", "envoy", "-o", os.DevNull, in)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		row(label, fmt.Sprintf("error: %v: %s", err, out), "")
		return
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	row(label, fmt.Sprintf("%s wall, %s CPU, %d MB peak RSS", wall.Round(time.Millisecond), cpu.Round(time.Millisecond), ru.Maxrss/1024), "<= 1 s, <= 100 MB")
}
