package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"envoy-lifecycle/envoyfake"
)

func signalNotify(ch chan os.Signal) { signal.Notify(ch, syscall.SIGTERM) }

// drainTimings measures SIGTERM to the wrapper → SIGTERM at the app with no
// connections open: with a 1s endpoint delay (target: the delay plus at most
// 5 ms), and for an idle pod whose delay is skipped.
func (b *bench) drainTimings() {
	n := 10
	if b.quick {
		n = 3
	}
	for _, c := range []struct {
		label    string
		delay    time.Duration
		skipIdle bool
		target   string
	}{
		{"SIGTERM -> app SIGTERM, no connections, DRAIN_DELAY=1s", time.Second, false, "1s + <= 5 ms"},
		{"SIGTERM -> app SIGTERM, idle pod (delay skipped)", time.Second, true, "(no target)"},
	} {
		var lat []time.Duration
		var failed error
		for i := 0; i < n && failed == nil; i++ {
			var d time.Duration
			d, failed = b.termToApp(c.delay, c.skipIdle)
			lat = append(lat, d)
		}
		label := fmt.Sprintf("%s (N=%d)", c.label, n)
		if failed != nil {
			row(label, "error: "+failed.Error(), c.target)
			continue
		}
		row(label, fmt.Sprintf("median %s max %s", ms(median(lat)), ms(maxOf(lat))), c.target)
	}
}

func (b *bench) termToApp(delay time.Duration, skipIdle bool) (time.Duration, error) {
	e, err := envoyfake.Start(envoyfake.Options{})
	if err != nil {
		return 0, err
	}
	defer e.Close()
	cmd := exec.Command(b.bin, b.self, "hang")
	cmd.Env = env("ENVOY_ADMIN_API="+e.AdminURL(), "ENVOY_LIFECYCLE_DRAIN_DELAY="+delay.String(),
		fmt.Sprintf("ENVOY_LIFECYCLE_DRAIN_SKIP_IDLE=%v", skipIdle), "ENVOY_LIFECYCLE_QUIT_VERIFY=0")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		return 0, fmt.Errorf("app did not start")
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	var rest string
	for sc.Scan() {
		rest += sc.Text() + "\n"
	}
	got, err := stamp(rest, "term")
	return got.Sub(sent), err
}
