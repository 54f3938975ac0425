// Package interop runs envoy-lifecycle against a real Istio pilot-agent,
// built from the Go module proxy at a pinned version, with the Envoy fake as
// its Envoy. See README.md.
package interop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"envoy-lifecycle/internal/pinned"
	"envoy-lifecycle/internal/testproc"
)

// Environment markers. The test binary re-executes itself inside the
// namespaces (nsMarker holds the app's exit code for that run); it also
// plays the wrapped app (testproc's "exit" command).
const (
	nsMarker   = "EL_INTEROP_IN_NAMESPACE"
	binsMarker = "EL_INTEROP_BINS" // JSON list: pilot-agent, template, envoyfake, envoy-lifecycle
)

// Bounds of every wait; the whole namespace run is killed after nsTimeout.
const (
	nsTimeout       = 3 * time.Minute
	envoyUpTimeout  = 30 * time.Second
	wrapperTimeout  = 30 * time.Second
	agentExitWithin = 5 * time.Second
)

func TestMain(m *testing.M) {
	testproc.Register("exit", testproc.Exit)
	// Only the in-namespace run, a child of this process, asks for "exit".
	testproc.MarkUsed("exit")
	testproc.Main(m)
}

// TestPilotAgentQuit wraps an app with envoy-lifecycle next to a real
// pilot-agent whose Envoy is the fake, and checks that the app's end makes
// pilot-agent exit 0 and takes its Envoy with it.
func TestPilotAgentQuit(t *testing.T) {
	if code := os.Getenv(nsMarker); code != "" {
		inNamespace(t, code)
		return
	}
	if os.Geteuid() != 0 {
		testproc.SkipOrFailInCI(t, "skipped: needs root, to create network and PID namespaces with unshare (pilot-agent binds *:15020, so it must only ever run in a private network namespace)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		testproc.SkipOrFailInCI(t, "skipped: unshare not found (install util-linux)")
	}

	agent, tmpl := pilotAgent(t)
	fake := testproc.BuildMain(t, "./envoyfake/cmd/envoyfake")
	wrapper := testproc.Build(t)
	bins, err := json.Marshal([]string{agent, tmpl, fake, wrapper})
	if err != nil {
		t.Fatal(err)
	}

	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprintf("app exits %d", code), func(t *testing.T) {
			t.Parallel()
			runInNamespace(t, unshare, string(bins), code)
		})
	}
}

// runInNamespace re-executes this test inside fresh network, PID and mount
// namespaces. The test binary is PID 1 there: when it exits, or when unshare
// is killed (--kill-child), the kernel kills everything left inside, so a
// failure can't leak a pilot-agent.
func runInNamespace(t *testing.T, unshare, bins string, code int) {
	cmd := exec.Command(unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
		os.Args[0], "-test.run=^TestPilotAgentQuit$", "-test.v", "-test.timeout="+(nsTimeout-10*time.Second).String())
	cmd.Env = append(os.Environ(), nsMarker+"="+strconv.Itoa(code), binsMarker+"="+bins, "GORACE=atexit_sleep_ms=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start unshare: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("in-namespace run failed: %v\n%s", err, out.String())
		}
	case <-time.After(nsTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("in-namespace run did not finish in %v; killed\n%s", nsTimeout, out.String())
	}
	t.Logf("in-namespace run:\n%s", out.String())
}

// inNamespace is the part that runs as PID 1 of the private namespaces.
func inNamespace(t *testing.T, code string) {
	want, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("bad %s=%q", nsMarker, code)
	}
	var bins []string
	if err := json.Unmarshal([]byte(os.Getenv(binsMarker)), &bins); err != nil || len(bins) != 4 {
		t.Fatalf("bad %s=%q (%v)", binsMarker, os.Getenv(binsMarker), err)
	}
	agentBin, tmpl, fakeBin, wrapperBin := bins[0], bins[1], bins[2], bins[3]
	if os.Getpid() != 1 {
		t.Fatalf("not PID 1 of a new PID namespace (pid %d)", os.Getpid())
	}
	if err := loopbackUp(); err != nil {
		t.Fatalf("cannot bring lo up: %v", err)
	}

	run := agentRunDir(t, tmpl)
	agent := startAgent(t, agentBin, fakeBin, run)
	fakePid := waitEnvoy(t, agent, fakeBin)
	t.Logf("pilot-agent pid %d started its envoy (the fake) as pid %d", agent.cmd.Process.Pid, fakePid)

	// The wrapper, around this test binary playing an app that exits want.
	w := exec.Command(wrapperBin, testproc.Argv("exit", code)...)
	w.Env = append(testproc.BareEnv(),
		"ENVOY_ADMIN_API=http://127.0.0.1:15000",
		"ISTIO_QUIT_API=http://127.0.0.1:15020",
		"ENVOY_LIFECYCLE_LOG_LEVEL=debug",
		"QUIT_WITHOUT_ENVOY_TIMEOUT=20s",
	)
	wlog := filepath.Join(t.TempDir(), "envoy-lifecycle.log")
	wst := startLogged(t, w, wlog)
	var wrapperExit time.Time
	select {
	case err := <-wst.done:
		wrapperExit = time.Now()
		if got := w.ProcessState.ExitCode(); got != want {
			t.Errorf("envoy-lifecycle exit code got %d (%v), want %d", got, err, want)
		}
	case <-time.After(wrapperTimeout):
		t.Fatalf("envoy-lifecycle did not exit in %v\n%s", wrapperTimeout, readFile(t, wlog))
	}
	wrapperOut := readFile(t, wlog)

	// pilot-agent exits 0 on /quitquitquit; it may well do so before the
	// wrapper has finished checking that the proxy is gone.
	select {
	case <-agent.done:
		if got := agent.cmd.ProcessState.ExitCode(); got != 0 {
			t.Errorf("pilot-agent exit code got %d (%s), want 0", got, agent.cmd.ProcessState)
		}
		t.Logf("pilot-agent exited %v after envoy-lifecycle", agent.exited.Sub(wrapperExit).Round(time.Millisecond))
	case <-time.After(agentExitWithin):
		t.Fatalf("pilot-agent still running %v after the wrapper exited\nwrapper:\n%s\npilot-agent:\n%s",
			agentExitWithin, wrapperOut, readFile(t, agent.log))
	}
	agentOut := readFile(t, agent.log)
	checkNamespaceEmpty(t, fakePid)
	if c, err := net.DialTimeout("tcp", "127.0.0.1:15000", time.Second); err == nil {
		c.Close()
		t.Error("envoy admin 127.0.0.1:15000 still accepts connections")
	}

	// What the wrapper logged: Envoy was LIVE, the app's code, the Istio quit
	// and the proxy seen gone.
	for _, s := range []string{
		"envoy live",
		fmt.Sprintf("app exited: code=%d", want),
		"istio proxy told to quit",
		"proxy stopped: address=http://127.0.0.1:15000",
	} {
		if !strings.Contains(wrapperOut, s) {
			t.Errorf("envoy-lifecycle log lacks %q", s)
		}
	}
	// What pilot-agent logged: it ran the fake with Envoy's command line, and
	// the wrapper's POST reached its status port.
	for _, s := range []string{"Envoy command: [-c ", "handling /quitquitquit"} {
		if !strings.Contains(agentOut, s) {
			t.Errorf("pilot-agent log lacks %q", s)
		}
	}
	// What the fake saw (its stderr is pilot-agent's): the readiness poll,
	// then the drain on exit, and no /quitquitquit, because pilot-agent
	// stopped it.
	calls := adminCalls(agentOut)
	wantOrder := []string{
		"GET /server_info -> 200",
		"POST /healthcheck/fail -> 200",
		"POST /drain_listeners?graceful&inboundonly -> 200",
	}
	if !subsequence(calls, wantOrder) {
		t.Errorf("admin calls got %q, want the subsequence %q", calls, wantOrder)
	}
	for _, c := range calls {
		if strings.Contains(c, "/quitquitquit") {
			t.Errorf("envoy's own /quitquitquit was called (%q): pilot-agent should have stopped it", c)
		}
	}
	t.Logf("admin calls the fake saw: %q", calls)
	t.Logf("envoy-lifecycle log:\n%s", wrapperOut)
	if t.Failed() {
		t.Logf("pilot-agent and fake log:\n%s", agentOut)
	}
}

// agentRunDir lays out the files pilot-agent reads relative to its working
// directory: a root CA, the bootstrap template and the config directory.
func agentRunDir(t *testing.T, tmpl string) string {
	run := t.TempDir()
	for _, d := range []string{"var/run/secrets/istio", "var/lib/istio/envoy", "etc/istio/proxy"} {
		if err := os.MkdirAll(filepath.Join(run, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatalf("cannot read bootstrap template: %v", err)
	}
	if err := os.WriteFile(filepath.Join(run, "var/lib/istio/envoy/envoy_bootstrap_tmpl.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "var/run/secrets/istio/root-cert.pem"), dummyRootCert(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return run
}

// dummyRootCert is a self-signed CA. pilot-agent only needs the file to
// exist and parse: there is no istiod to talk to.
func dummyRootCert(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"dummy-test-root"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// started is a process whose output goes to a file, with a bounded-wait
// friendly exit channel.
type started struct {
	cmd    *exec.Cmd
	log    string
	done   chan error // receives Wait's result once
	exited time.Time  // set before done is sent
}

func startLogged(t *testing.T, cmd *exec.Cmd, logPath string) *started {
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A file, not a pipe: no copy goroutine for a grandchild (the fake holds
	// pilot-agent's stderr) to keep alive.
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", cmd.Path, err)
	}
	s := &started{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		s.exited = time.Now()
		s.done <- err
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	})
	return s
}

func startAgent(t *testing.T, agentBin, fakeBin, run string) *started {
	pc, err := json.Marshal(map[string]any{
		"binaryPath":               fakeBin,
		"configPath":               filepath.Join(run, "etc/istio/proxy"),
		"statusPort":               15020,
		"proxyAdminPort":           15000,
		"discoveryAddress":         "127.0.0.1:15012",
		"terminationDrainDuration": "3s",
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(agentBin, "proxy", "sidecar")
	cmd.Dir = run
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + run,
		"POD_NAME=test-pod",
		"POD_NAMESPACE=default",
		"INSTANCE_IP=127.0.0.1",
		"ISTIO_META_CLUSTER_ID=Kubernetes",
		"PROXY_CONFIG=" + string(pc),
	}
	return startLogged(t, cmd, filepath.Join(run, "agent.log"))
}

// waitEnvoy polls the fake's admin on 15000 (not pilot-agent's 15020, which
// opens before Envoy is started) and returns the fake's pid.
func waitEnvoy(t *testing.T, agent *started, fakeBin string) int {
	client := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), envoyUpTimeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:15000/ready", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-agent.done:
			t.Fatalf("pilot-agent exited before its envoy answered: %s\n%s", agent.cmd.ProcessState, readFile(t, agent.log))
		case <-ctx.Done():
			t.Fatalf("envoy (the fake) not answering on 127.0.0.1:15000 after %v\n%s", envoyUpTimeout, readFile(t, agent.log))
		case <-time.After(20 * time.Millisecond):
		}
	}
	pids := pidsOf(fakeBin)
	if len(pids) != 1 {
		t.Fatalf("envoy fake processes got %v, want exactly one", pids)
	}
	if _, ppid, _ := testproc.ProcStat(pids[0]); ppid != agent.cmd.Process.Pid {
		t.Fatalf("envoy fake's parent got %d, want pilot-agent %d", ppid, agent.cmd.Process.Pid)
	}
	return pids[0]
}

// checkNamespaceEmpty waits until no process but this one is left in the PID
// namespace. pilot-agent SIGKILLs its Envoy; if it exits before reaping it,
// the zombie is ours (we are PID 1) to reap.
func checkNamespaceEmpty(t *testing.T, fakePid int) {
	deadline := time.Now().Add(agentExitWithin)
	for {
		var ws syscall.WaitStatus
		// Safe: every exec.Cmd of ours has been waited for by now.
		for {
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == fakePid {
				t.Logf("reaped the orphaned envoy fake: %v", describe(ws))
			}
		}
		left := otherPids()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, p := range left {
				desc = append(desc, fmt.Sprintf("%d %s", p, comm(p)))
			}
			t.Fatalf("processes still in the namespace %v after pilot-agent exited: %q (envoy fake was %d)",
				agentExitWithin, desc, fakePid)
		}
		time.Sleep(10 * time.Millisecond) // polling /proc against the deadline above
	}
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

// adminCalls extracts "METHOD PATH[?QUERY] -> STATUS" from the fake's log
// lines ("envoyfake: admin POST /healthcheck/fail? -> 200").
func adminCalls(log string) []string {
	var calls []string
	for l := range strings.Lines(log) {
		_, rest, ok := strings.Cut(l, "envoyfake: admin ")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		rest = strings.Replace(rest, "? -> ", " -> ", 1) // no query
		calls = append(calls, rest)
	}
	return calls
}

// subsequence reports whether want appears in got in order, not necessarily
// adjacent.
func subsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// pidsOf lists the processes running the executable path.
func pidsOf(path string) []int {
	var pids []int
	for _, p := range allPids() {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); err == nil && exe == path {
			pids = append(pids, p)
		}
	}
	return pids
}

func otherPids() []int {
	var pids []int
	for _, p := range allPids() {
		if p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("cannot read %s: %v", path, err)
	}
	return string(b)
}

// loopbackUp sets IFF_UP on lo with the SIOCSIFFLAGS ioctl, as `ip link set
// lo up` does, without needing iproute2. A new network namespace has lo down.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open socket: %w", err)
	}
	defer syscall.Close(fd)
	var ifr [40]byte // struct ifreq: char ifr_name[16]; short ifr_flags; ...
	copy(ifr[:], "lo")
	ioctl := func(req uintptr) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			return e
		}
		return nil
	}
	if err := ioctl(syscall.SIOCGIFFLAGS); err != nil {
		return fmt.Errorf("cannot read lo flags: %w", err)
	}
	flags := binary.NativeEndian.Uint16(ifr[16:])
	binary.NativeEndian.PutUint16(ifr[16:], flags|syscall.IFF_UP)
	if err := ioctl(syscall.SIOCSIFFLAGS); err != nil {
		return fmt.Errorf("cannot set lo up: %w", err)
	}
	return nil
}

// pilotAgent returns the pinned pilot-agent and its bootstrap template,
// which internal/pinned builds into its cache on a miss.
func pilotAgent(t *testing.T) (bin, tmpl string) {
	start := time.Now()
	bin, tmpl, hit, err := pinned.PilotAgent(context.Background())
	skipIfOffline(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pilot-agent %s (cached: %v, %v)", pinned.IstioVersion, hit, time.Since(start).Round(time.Second))
	return bin, tmpl
}

// skipIfOffline skips t with one line (fails it in CI) when err says the
// module proxy is unreachable.
func skipIfOffline(t *testing.T, err error) {
	var off *pinned.OfflineError
	if errors.As(err, &off) {
		testproc.SkipOrFailInCI(t, "skipped: pilot-agent is not cached and "+off.Error())
	}
}

// TestOfflineSkips: with the module proxy unreachable (a loopback port that
// refuses) and nothing cached, the interop test skips with one line, at
// once, instead of failing after the build's retries (issue 12 item 15).
func TestOfflineSkips(t *testing.T) {
	t.Setenv("CI", "") // in CI the same line is a failure
	t.Setenv("GOPROXY", "http://127.0.0.1:1")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // an empty pinned cache
	start := time.Now()
	skipped := false
	var err error
	t.Run("probe", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		_, _, _, err = pinned.PilotAgent(context.Background())
		skipIfOffline(t, err)
	})
	if !skipped {
		t.Errorf("an unreachable module proxy did not skip the interop test: %v", err)
	}
	if took := time.Since(start); took >= pinned.ProbeTimeout {
		t.Errorf("the skip took %v, want well under %v", took, pinned.ProbeTimeout)
	}
	if off := (*pinned.OfflineError)(nil); !errors.As(err, &off) || !strings.Contains(off.Why, "127.0.0.1:1") || strings.Contains(off.Why, "\n") {
		t.Errorf("got %v, want an *OfflineError whose one line names the proxy", err)
	}
}
