package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

const testTimeout = 5 * time.Second

func TestParseArgsIgnoresEnvoyFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "envoy-rev.json")
	if err := os.WriteFile(bootstrap, []byte(`{"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":15000}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// pilot-agent's Envoy command line (envoy-admin.md §5.2) plus ours.
	istio := []string{"-c", bootstrap, "--drain-time-s", "45", "--drain-strategy", "immediate",
		"--local-address-ip-version", "v4", "--file-flush-interval-msec", "1000", "--disable-hot-restart",
		"--allow-unknown-static-fields", "-l", "warning", "--skip-deprecated-logs"}
	cases := []struct {
		name      string
		args      []string
		admin     string
		never     bool
		liveAfter time.Duration
		agent     string
	}{
		{"ours only", []string{"-admin", "127.0.0.1:9901", "-never-live", "-live-after=3s"}, "127.0.0.1:9901", true, 3 * time.Second, ""},
		{"istio command line", istio, "127.0.0.1:15000", false, 0, ""},
		{"explicit admin wins over bootstrap", append([]string{"--admin=127.0.0.1:1"}, istio...), "127.0.0.1:1", false, 0, ""},
		{"mixed", append(istio, "-pilot-agent", "127.0.0.1:0", "-never-live"), "127.0.0.1:15000", true, 0, "127.0.0.1:0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseArgs(tc.args, io.Discard)
			if err != nil {
				t.Fatalf("parseArgs: %v", err)
			}
			if cfg.opts.AdminAddr != tc.admin || cfg.opts.NeverLive != tc.never ||
				cfg.opts.LiveAfter != tc.liveAfter || cfg.agentAddr != tc.agent {
				t.Errorf("got admin=%q never=%v live-after=%v agent=%q", cfg.opts.AdminAddr,
					cfg.opts.NeverLive, cfg.opts.LiveAfter, cfg.agentAddr)
			}
		})
	}
	if _, err := parseArgs([]string{"-live-after", "soon"}, io.Discard); err == nil {
		t.Error("bad duration accepted")
	}
}

// startRun runs the command in-process and returns its first stdout line
// and its exit code channel.
func startRun(t *testing.T, args []string, sigs chan os.Signal) (string, <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		code <- run(args, pw, io.Discard, sigs)
		_ = pw.Close()
	}()
	type first struct {
		line string
		ok   bool
	}
	lines := make(chan first, 1)
	go func() {
		s := bufio.NewScanner(pr)
		ok := s.Scan()
		lines <- first{s.Text(), ok}
		_, _ = io.Copy(io.Discard, pr)
	}()
	f := testproc.Recv(t, "the ready line", lines)
	if !f.ok {
		t.Fatalf("no ready line; exit code %d", waitCode(t, code))
	}
	return f.line, code
}

func field(line, key string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

func waitCode(t *testing.T, code <-chan int) int {
	t.Helper()
	return testproc.Recv(t, "run to return", code)
}

func post(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: testTimeout}
	resp, err := c.Post(url, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: status %d", url, resp.StatusCode)
	}
}

func TestRunExitsAfterQuit(t *testing.T) {
	t.Parallel()
	addrFile := filepath.Join(t.TempDir(), "admin-address")
	line, code := startRun(t, []string{"-pilot-agent", "127.0.0.1:0", "--admin-address-path", addrFile}, make(chan os.Signal))
	admin, listener, agent := field(line, "admin"), field(line, "listener"), field(line, "agent")
	if !strings.HasPrefix(line, "envoyfake ") || !strings.HasPrefix(admin, "http://127.0.0.1:") || listener == "" || agent == "" {
		t.Fatalf("ready line got %q", line)
	}
	if b, err := os.ReadFile(addrFile); err != nil || "http://"+string(b) != admin {
		t.Errorf("admin address file got %q %v, want %s", b, err, admin)
	}
	post(t, admin+"/quitquitquit")
	if c := waitCode(t, code); c != 0 {
		t.Errorf("exit code got %d, want 0", c)
	}
}

func TestRunExitsAfterAgentQuit(t *testing.T) {
	t.Parallel()
	line, code := startRun(t, []string{"-pilot-agent", "127.0.0.1:0"}, make(chan os.Signal))
	post(t, field(line, "agent")+"/quitquitquit")
	if c := waitCode(t, code); c != 0 {
		t.Errorf("exit code got %d, want 0", c)
	}
}

func TestRunExitsOnSignal(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 1)
	_, code := startRun(t, []string{"-never-live"}, sigs)
	sigs <- syscall.SIGTERM
	if c := waitCode(t, code); c != 0 {
		t.Errorf("exit code got %d, want 0", c)
	}
}

func TestRunFailsOnBadOptions(t *testing.T) {
	t.Parallel()
	if c := run([]string{"-garbage", "xml"}, io.Discard, io.Discard, nil); c != exitStart {
		t.Errorf("exit code got %d, want %d", c, exitStart)
	}
	if c := run([]string{"-live-after", "x"}, io.Discard, io.Discard, nil); c != exitUsage {
		t.Errorf("exit code got %d, want %d", c, exitUsage)
	}
	// An Envoy that never existed (envoy-admin.md §4 ends at 1.38).
	var stderr strings.Builder
	if c := run([]string{"-envoy-version", "1.39.0"}, io.Discard, &stderr, nil); c != exitStart || !strings.Contains(stderr.String(), `"1.39.0" is not an Envoy release`) {
		t.Errorf("-envoy-version 1.39.0: exit code %d, stderr %q; want %d and the version refused", c, stderr.String(), exitStart)
	}
}
