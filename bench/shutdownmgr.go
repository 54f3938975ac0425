package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"envoy-lifecycle/envoyfake"
)

// userHZ is the unit of utime and stime in /proc/pid/stat (USER_HZ, 100 on
// Linux whatever the kernel's HZ).
const userHZ = 100

// shutdownMgr measures the shutdown manager: its idle peak RSS and CPU time
// over 60s (30s with -quick), and the time from the connection count
// reaching the minimum to /shutdown returning.
func (b *bench) shutdownMgr() {
	idle := 60 * time.Second
	if b.quick {
		idle = 30 * time.Second
	}
	hwm, cpu, err := b.mgrIdle(idle)
	if err != nil {
		row("shutdown manager idle", "error: "+err.Error(), "")
	} else {
		row(fmt.Sprintf("shutdown manager peak RSS (VmHWM), idle %v", idle), fmt.Sprintf("%.1f MiB", float64(hwm)/1024), "<= 10 MiB")
		row(fmt.Sprintf("shutdown manager CPU time (utime+stime), idle %v", idle),
			fmt.Sprintf("%d ms (%.3f%% of a core)", cpu.Milliseconds(), 100*cpu.Seconds()/idle.Seconds()), "~0 (10 ms resolution)")
	}
	n := 10
	if b.quick {
		n = 5
	}
	for _, period := range []time.Duration{time.Second, 100 * time.Millisecond} {
		var lat []time.Duration
		var failed error
		for i := 0; i < n && failed == nil; i++ {
			// Release at spread offsets within a period: the wait for the
			// next poll is then spread too, up to one period.
			var d time.Duration
			d, failed = b.mgrReturn(period, time.Duration(i)*period/time.Duration(n))
			lat = append(lat, d)
		}
		label := fmt.Sprintf("connections at min -> /shutdown returns, --period %v (N=%d)", period, n)
		target := fmt.Sprintf("<= %v + 5 ms", period)
		if failed != nil {
			row(label, "error: "+failed.Error(), target)
			continue
		}
		row(label, fmt.Sprintf("median %s max %s", ms(median(lat)), ms(maxOf(lat))), target)
	}
}

// mgrProc is a running shutdown manager.
type mgrProc struct {
	cmd  *exec.Cmd
	port int
	dir  string
}

// startMgr starts the manager on a free loopback port against admin.
func (b *bench) startMgr(admin string, args ...string) (*mgrProc, error) {
	dir, err := os.MkdirTemp(b.dir, "mgr")
	if err != nil {
		return nil, err
	}
	argv := append([]string{"shutdown-manager", "--address", "127.0.0.1", "--port", "0", "--envoy-admin", admin,
		"--ready-file", filepath.Join(dir, "ok"), "--state-file", filepath.Join(dir, "state")}, args...)
	cmd := exec.Command(b.bin, argv...)
	// JSON, to read the listening address from one field; text is the default.
	cmd.Env = env("SHUTDOWN_MANAGER_LOG_TO_PID1=false", "ENVOY_LIFECYCLE_LOG_LEVEL=info", "ENVOY_LIFECYCLE_LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &mgrProc{cmd: cmd, dir: dir}
	ports := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l struct {
				Message string `json:"@message"`
				Address string `json:"address"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "listening" {
				_, p, _ := net.SplitHostPort(l.Address)
				port, _ := strconv.Atoi(p)
				ports <- port
				break
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case m.port = <-ports:
	case <-time.After(10 * time.Second):
	}
	if m.port == 0 {
		m.stop()
		return nil, fmt.Errorf("manager did not start")
	}
	return m, nil
}

func (m *mgrProc) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-done
	}
}

// mgrIdle starts a manager, leaves it alone for d and returns its peak RSS
// (kB) and the CPU time it used meanwhile.
func (b *bench) mgrIdle(d time.Duration) (hwm int, cpu time.Duration, err error) {
	e, err := envoyfake.Start(envoyfake.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer e.Close()
	m, err := b.startMgr(e.AdminURL())
	if err != nil {
		return 0, 0, err
	}
	defer m.stop()
	before, err := cpuTime(m.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(d) // the measurement window, not a synchronisation
	after, err := cpuTime(m.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	return statusField(m.cmd.Process.Pid, "VmHWM"), after - before, nil
}

// cpuTime reads utime+stime of pid from /proc/pid/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime 14 and stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := firstErr(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// mgrReturn holds a request open through the fake, calls /shutdown, and
// releases the request offset after the drain's first poll. It returns the
// time from the fake counting no connection to /shutdown's answer.
func (b *bench) mgrReturn(period, offset time.Duration) (time.Duration, error) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer app.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	e, err := envoyfake.Start(envoyfake.Options{Upstream: app.Listener.Addr().String()})
	if err != nil {
		return 0, err
	}
	defer e.Close()
	go func() {
		resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + e.ListenerAddr() + "/")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("request not held")
	}
	m, err := b.startMgr(e.AdminURL())
	if err != nil {
		return 0, err
	}
	defer m.stop()

	returned := make(chan time.Time, 1)
	failed := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://127.0.0.1:%d/shutdown?delay=0&period=%s", m.port, period)
		resp, err := (&http.Client{Timeout: time.Minute}).Get(url)
		at := time.Now()
		if err != nil {
			failed <- err
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed <- fmt.Errorf("/shutdown answered %d", resp.StatusCode)
			return
		}
		returned <- at
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.WaitRequest(ctx, func(r envoyfake.Request) bool { return r.Path == "/stats" }); err != nil {
		return 0, err
	}
	time.Sleep(offset) // where in the poll period the connection closes
	close(release)
	var zero time.Time
	for zero.IsZero() {
		if e.ActiveConnections() == 0 {
			zero = time.Now()
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("the connection never closed")
		}
	}
	select {
	case at := <-returned:
		return at.Sub(zero), nil
	case err := <-failed:
		return 0, err
	case <-ctx.Done():
		return 0, fmt.Errorf("/shutdown did not return")
	}
}
