// Command bench builds envoy-lifecycle and prints its figures against the
// Envoy fake: readiness latency, quit latency, start-up overhead, memory,
// binary size, reliability and the drain timings.
//
//	go run ./bench            # everything (about 3 minutes)
//	go run ./bench -quick     # fewer runs, no 60s readiness case
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/dockerbuild"
	"envoy-lifecycle/lbsim"
)

// startedAt is taken as early as the app can: before main runs.
var startedAt = time.Now()

const appMarker = "EL_BENCH_APP"

func main() {
	if os.Getenv(appMarker) == "1" {
		os.Exit(runApp(os.Args[1:]))
	}
	quick := flag.Bool("quick", false, "fewer runs and no 60s readiness case")
	only := flag.String("only", "", "comma-separated sections to run: size,startup,rss,ready,quit,reliability,drain,load,shutdownmgr,inject")
	flag.Parse()
	b, err := newBench(*quick)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(b.dir)
	sections := []struct {
		name string
		run  func()
	}{
		{"size", b.size},
		{"startup", b.startup},
		{"rss", b.rss},
		{"ready", b.readiness},
		{"quit", b.quitLatency},
		{"reliability", b.reliability},
		{"drain", b.drainTimings},
		{"load", b.load},
		{"shutdownmgr", b.shutdownMgr},
		{"inject", b.inject},
	}
	fmt.Printf("%-58s %-28s %s\n", "figure", "measured", "target")
	for _, s := range sections {
		if *only == "" || strings.Contains(","+*only+",", ","+s.name+",") {
			s.run()
		}
	}
}

// runApp is the benchmark's app: the bench binary run again by the wrapper.
func runApp(args []string) int {
	switch args[0] {
	case "started": // print when it started, exit 0
		fmt.Printf("started %d\n", startedAt.UnixNano())
		return 0
	case "exit": // print when it exits, exit N
		n, _ := strconv.Atoi(args[1])
		fmt.Printf("exit %d\n", time.Now().UnixNano())
		return n
	case "serve": // the load-tested app
		return lbsim.ServeApp(args[1], 10*time.Millisecond, os.Stdout)
	case "hang": // print ready, then print when SIGTERM arrives and exit
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		fmt.Println("ready")
		<-ch
		fmt.Printf("term %d\n", time.Now().UnixNano())
		return 0
	}
	return 2
}

type bench struct {
	dir, bin, self string
	quick          bool
}

func newBench(quick bool) (*bench, error) {
	dir, err := os.MkdirTemp("", "el-bench")
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir, bin: filepath.Join(dir, "envoy-lifecycle"), quick: quick}
	if b.self, err = os.Executable(); err != nil {
		return nil, err
	}
	// As the Dockerfile builds it.
	cmd, err := dockerbuild.Command(".", b.bin, ".", nil)
	if err != nil {
		return nil, fmt.Errorf("cannot build: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("cannot build: %w", err)
	}
	return b, nil
}

func row(figure, measured, target string) {
	fmt.Printf("%-58s %-28s %s\n", figure, measured, target)
}

// env is a clean environment for the wrapper plus kv.
func env(kv ...string) []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "ENVOY_") && !strings.HasPrefix(e, "ISTIO_") {
			out = append(out, e)
		}
	}
	return append(append(out, appMarker+"=1", "ENVOY_LIFECYCLE_LOG_LEVEL=error"), kv...)
}

func (b *bench) size() {
	fi, err := os.Stat(b.bin)
	if err != nil {
		row("stripped static binary", "error: "+err.Error(), "<= 8 MB")
		return
	}
	row("stripped static binary (as the Dockerfile builds it)", fmt.Sprintf("%.2f MB (%d B)", float64(fi.Size())/1e6, fi.Size()), "<= 8 MB")
}

// startup is the median extra wall time of `envoy-lifecycle /bin/true` over
// `/bin/true`, runs interleaved so drift hits both alike.
func (b *bench) startup() {
	n := 300
	if b.quick {
		n = 100
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		row("start-up overhead", "error: no true(1)", "<= 2.0 ms")
		return
	}
	var plain, wrapped []time.Duration
	e := env()
	for i := 0; i < n; i++ {
		for _, argv := range [][]string{{truePath}, {b.bin, truePath}} {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = e
			t := time.Now()
			if err := cmd.Run(); err != nil {
				row("start-up overhead", "error: "+err.Error(), "<= 2.0 ms")
				return
			}
			if len(argv) == 1 {
				plain = append(plain, time.Since(t))
			} else {
				wrapped = append(wrapped, time.Since(t))
			}
		}
	}
	row(fmt.Sprintf("start-up overhead vs /bin/true (median of %d)", n),
		ms(median(wrapped)-median(plain))+fmt.Sprintf(" (%s vs %s)", ms(median(wrapped)), ms(median(plain))), "<= 2.0 ms")
}

// rss reads the wrapper's peak RSS (VmHWM) while its app runs.
func (b *bench) rss() {
	for _, withEnvoy := range []bool{true, false} {
		var kv []string
		label := "peak RSS while the app runs, without ENVOY_ADMIN_API"
		target := "(peers: 7.3 MiB)"
		if withEnvoy {
			e, err := envoyfake.Start(envoyfake.Options{})
			if err != nil {
				row(label, "error: "+err.Error(), "")
				return
			}
			defer e.Close()
			kv = append(kv, "ENVOY_ADMIN_API="+e.AdminURL())
			label, target = "peak RSS while the app runs, with ENVOY_ADMIN_API", "<= 8 MiB"
		}
		cmd := exec.Command(b.bin, b.self, "hang")
		cmd.Env = env(kv...)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			row(label, "error: "+err.Error(), target)
			continue
		}
		sc := bufio.NewScanner(out)
		sc.Scan() // "ready": the app runs, the wrapper is past its start-up
		hwm := statusField(cmd.Process.Pid, "VmHWM")
		cmd.Process.Signal(syscall.SIGTERM)
		for sc.Scan() {
		}
		cmd.Wait()
		row(label, fmt.Sprintf("%.1f MiB", float64(hwm)/1024), target)
	}
}

// statusField returns a kB field of /proc/pid/status.
func statusField(pid int, name string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

// readiness measures LIVE → app start for Envoys that take 1s, 5s and 60s to
// become LIVE, with the admin request rate during the wait. Runs of one
// case go in small concurrent batches to bound the wall time.
func (b *bench) readiness() {
	cases := []struct {
		after     time.Duration
		runs, par int
	}{{time.Second, 30, 3}, {5 * time.Second, 20, 4}, {60 * time.Second, 8, 8}}
	if b.quick {
		cases = []struct {
			after     time.Duration
			runs, par int
		}{{time.Second, 10, 2}, {5 * time.Second, 4, 4}}
	}
	for _, poll := range []string{"44ms", "25ms"} {
		for _, c := range cases {
			lat, rate, err := b.readinessCase(c.after, c.runs, c.par, poll)
			label := fmt.Sprintf("readiness latency, LIVE after %v, poll max %s (N=%d)", c.after, poll, c.runs)
			if err != nil {
				row(label, "error: "+err.Error(), "")
				continue
			}
			row(label, fmt.Sprintf("median %s max %s, %.1f req/s", ms(median(lat)), ms(maxOf(lat)), rate), "median <= 15 ms, max <= 50 ms, <= 25 req/s")
		}
		if b.quick {
			break
		}
	}
}

func (b *bench) readinessCase(after time.Duration, runs, par int, poll string) ([]time.Duration, float64, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		rates []float64
		first error
	)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < runs; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l, r, err := b.readinessRun(after, poll)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				first = err
				return
			}
			lat, rates = append(lat, l), append(rates, r)
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, 0, first
	}
	sum := 0.0
	for _, r := range rates {
		sum += r
	}
	return lat, sum / float64(len(rates)), nil
}

func (b *bench) readinessRun(after time.Duration, poll string) (time.Duration, float64, error) {
	// A random extra 0-100ms: real Envoys turn LIVE at no particular phase
	// of the wrapper's poll schedule, and a round LiveAfter must not line up
	// with it.
	e, err := envoyfake.Start(envoyfake.Options{LiveAfter: after + time.Duration(rand.Int64N(int64(100*time.Millisecond)))})
	if err != nil {
		return 0, 0, err
	}
	defer e.Close()
	begin := time.Now()
	out, err := b.output(env("ENVOY_ADMIN_API="+e.AdminURL(), "ENVOY_LIFECYCLE_POLL_MAX="+poll), b.self, "started")
	if err != nil {
		return 0, 0, err
	}
	started, err := stamp(out, "started")
	if err != nil {
		return 0, 0, err
	}
	polls := 0
	for _, r := range e.Requests() {
		if r.Path == "/server_info" {
			polls++
		}
	}
	wait := e.LiveAt().Sub(begin).Seconds()
	return started.Sub(e.LiveAt()), float64(polls) / wait, nil
}

// quitLatency measures app exit → quit request at the fake, with the drain
// off (issue 2's figure) and on (a finished Job: fail, drain, poll, quit).
func (b *bench) quitLatency() {
	n := 50
	if b.quick {
		n = 15
	}
	for _, drain := range []bool{false, true} {
		var lat []time.Duration
		var failed error
		for i := 0; i < n; i++ {
			e, err := envoyfake.Start(envoyfake.Options{})
			if err != nil {
				failed = err
				break
			}
			out, err := b.output(env("ENVOY_ADMIN_API="+e.AdminURL(), "ENVOY_LIFECYCLE_DRAIN="+strconv.FormatBool(drain), "ENVOY_LIFECYCLE_QUIT_VERIFY=0"), b.self, "exit", "0")
			exited, err2 := stamp(out, "exit")
			var quitAt time.Time
			for _, r := range e.Requests() {
				if r.Path == "/quitquitquit" {
					quitAt = r.At
				}
			}
			e.Close()
			if err = firstErr(err, err2); err != nil || quitAt.IsZero() {
				failed = firstErr(err, fmt.Errorf("no quit request"))
				break
			}
			lat = append(lat, quitAt.Sub(exited))
		}
		label, target := fmt.Sprintf("quit latency: app exit -> POST /quitquitquit (N=%d)", n), "median <= 1 ms"
		if drain {
			label, target = fmt.Sprintf("finished Job: app exit -> quit incl. hc fail + drain (N=%d)", n), "median <= 2 ms"
		}
		if failed != nil {
			row(label, "error: "+failed.Error(), target)
			continue
		}
		row(label, fmt.Sprintf("median %s max %s", ms(median(lat)), ms(maxOf(lat))), target)
	}
}

// reliability runs the wrapper many times with apps that exit 0 and 3 and
// counts wrong exit codes.
func (b *bench) reliability() {
	n := 1000
	if b.quick {
		n = 200
	}
	truePath, _ := exec.LookPath("true")
	for _, c := range []struct {
		argv []string
		want int
	}{{[]string{truePath}, 0}, {[]string{b.self, "exit", "3"}, 3}} {
		wrong := 0
		for i := 0; i < n; i++ {
			e, err := envoyfake.Start(envoyfake.Options{})
			if err != nil {
				wrong++
				continue
			}
			cmd := exec.Command(b.bin, c.argv...)
			cmd.Env = env("ENVOY_ADMIN_API="+e.AdminURL(), "ENVOY_LIFECYCLE_QUIT_VERIFY=0")
			cmd.Run()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != c.want {
				wrong++
			}
			e.Close()
		}
		row(fmt.Sprintf("wrong exit codes, %d runs of app exiting %d", n, c.want), strconv.Itoa(wrong), "0")
	}
}

func (b *bench) output(environ []string, argv ...string) (string, error) {
	cmd := exec.Command(b.bin, argv...)
	cmd.Env = environ
	out, err := cmd.Output()
	return string(out), err
}

// stamp finds "<word> <unix ns>" in out.
func stamp(out, word string) (time.Time, error) {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, word+" "); ok {
			ns, err := strconv.ParseInt(v, 10, 64)
			return time.Unix(0, ns), err
		}
	}
	return time.Time{}, fmt.Errorf("no %q line in app output %q", word, out)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(d []time.Duration) time.Duration {
	var m time.Duration
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
