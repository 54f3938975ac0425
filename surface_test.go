package main

// Issue 12: one command-line surface. One test per numbered item, each
// named after it (items 2 and 10 are the shutdown manager's own tests; 3 is
// readme_test.go, 15 is interop's TestOfflineSkips, 16 readme_tables_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/cli"
	"envoy-lifecycle/doctor"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
	"envoy-lifecycle/settings"
	"envoy-lifecycle/shutdownmgr"
)

// runBin runs the built binary with baseEnv plus env, bounded.
func runBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(t), args...)
	cmd.Env = append(baseEnv(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("envoy-lifecycle %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// peerWarning is the start-up line of a value read by a peer's rule.
const peerWarning = "setting not taken as written"

// TestItem01PeerValuesStartTheApp: a value a peer accepted never stops the
// app; it is read with the peer's meaning and warned about once.
func TestItem01PeerValuesStartTheApp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env   string
		warns int
	}{
		{"START_WITHOUT_ENVOY=", 0}, // Helm's empty string
		{"WAIT_FOR_ENVOY_TIMEOUT=", 0},
		{"NEVER_KILL_ENVOY=yes", 1},
		{"START_WITHOUT_ENVOY=yes please", 1},
		{"QUIT_REQUEST_TIMEOUT=abc", 1},
		{"WAIT_FOR_ENVOY_TIMEOUT=-1s", 1},
		{"SCUTTLE_LOGGING=0", 1},
		{"GENERIC_QUIT_ENDPOINTS=http://127.0.0.1:1/quit,notaurl", 1},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			t.Parallel()
			marker := filepath.Join(t.TempDir(), "started")
			p := start(t, []string{c.env}, app("touch", marker)...)
			if got := p.ExitCode(); got != 0 {
				t.Errorf("exit code got %d, want 0", got)
			}
			if _, err := os.Stat(marker); err != nil {
				t.Error("app was not started")
			}
			out := p.Stderr.String()
			if got := strings.Count(out, peerWarning); got != c.warns {
				t.Errorf("%d warnings, want %d:\n%s", got, c.warns, out)
			}
			name, _, _ := strings.Cut(c.env, "=")
			if c.warns == 1 && !regexp.MustCompile(`variable=`+name+` .*taken_as=`).MatchString(out) {
				t.Errorf("the warning does not name %s and what it was taken as:\n%s", name, out)
			}
		})
	}
	// The meaning is the peer's: envoy-preflight read NEVER_KILL_ENVOY=yes as
	// false, so the proxy is stopped.
	e := envoytest.Start(t, envoyfake.Options{})
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "NEVER_KILL_ENVOY=yes"}, app("exit", "0")...)
	if got := p.ExitCode(); got != 0 {
		t.Errorf("exit code got %d, want 0", got)
	}
	select {
	case <-e.Quit():
	case <-time.After(5 * time.Second):
		t.Errorf("NEVER_KILL_ENVOY=yes kept the proxy; envoy-preflight stopped it:\n%s", p.Stderr.String())
	}
}

// clearMgrEnv empties every variable the manager reads (empty is unset).
func clearMgrEnv(t *testing.T) {
	var c mgrConfig
	for _, s := range c.settings() {
		for _, n := range s.env {
			t.Setenv(n, "")
		}
	}
}

func mapEnv(m map[string]string) *settings.Env {
	return &settings.Env{Lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// TestItem04OneRulePerKind: a duration, a boolean, an admin address and the
// log format mean the same in wrap mode, the manager and inject.
func TestItem04OneRulePerKind(t *testing.T) {
	clearMgrEnv(t)
	wrapCfg := func(m map[string]string) (*Config, error) { return loadConfig(mapEnv(m)) }

	// Durations: a bare number is seconds everywhere.
	w, err := wrapCfg(map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "5", "ENVOY_LIFECYCLE_GRACE_PERIOD": "30"})
	if err != nil || w.drainDelay != 5*time.Second || w.grace != 30*time.Second {
		t.Errorf("wrap: DRAIN_DELAY=5, GRACE_PERIOD=30 got %v, %v, %v", w, err, err)
	}
	m, _, err := parseMgrConfig(forManager, []string{"--delay", "5"})
	if err != nil || m.delay != 5*time.Second {
		t.Errorf("manager: --delay 5 got %v", err)
	}
	manifest := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: app, image: app, command: [/app]}\n      - {name: envoy, image: envoy}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := runInject([]string{"--preset", "envoy", "--drain-deadline", "20", "--dry-run", manifest}, nil, &out, &errOut); code != 0 {
		t.Errorf("inject --drain-deadline 20 got exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	runInject([]string{"--preset", "envoy", "--drain-deadline", "20x", "--dry-run", manifest}, nil, &out, &errOut)
	if !strings.Contains(errOut.String(), `--drain-deadline="20x": cannot parse (valid: `+settings.ValidDuration+`)`) {
		t.Errorf("inject --drain-deadline 20x got %q", errOut.String())
	}

	// Booleans: yes is true in both; t is refused in both with one message.
	if w, err := wrapCfg(map[string]string{"ENVOY_LIFECYCLE_DRAIN": "yes"}); err != nil || !w.Drain {
		t.Errorf("wrap: ENVOY_LIFECYCLE_DRAIN=yes got %v", err)
	}
	if m, _, err := parseMgrConfig(forManager, []string{"--drain-listeners=yes"}); err != nil || !m.drainListeners {
		t.Errorf("manager: --drain-listeners=yes got %v", err)
	}
	_, errW := wrapCfg(map[string]string{"ENVOY_LIFECYCLE_DRAIN": "t"})
	_, _, errM := parseMgrConfig(forManager, []string{"--drain-listeners=t"})
	var ew, em *settings.Error
	if !errors.As(errW, &ew) || !errors.As(errM, &em) || ew.Valid != settings.ValidBool || em.Valid != settings.ValidBool {
		t.Errorf("t: wrap got %v, manager got %v; want both refused with %q", errW, errM, settings.ValidBool)
	}

	// Admin addresses: a bare absolute path is a Unix socket in both.
	const sock = "/run/envoy/admin.sock"
	if w, err := wrapCfg(map[string]string{"ENVOY_ADMIN_API": sock}); err != nil || w.AdminAPI != "unix://"+sock {
		t.Errorf("wrap: ENVOY_ADMIN_API=%s got %v", sock, err)
	}
	if m, _, err := parseMgrConfig(forManager, []string{"--envoy-admin", sock}); err != nil || m.adminURL != "unix://"+sock {
		t.Errorf("manager: --envoy-admin %s got %v", sock, err)
	}

	// Log format: one default.
	w, _ = wrapCfg(nil)
	m, _, _ = parseMgrConfig(forManager, nil)
	d, _, _ := parseMgrConfig(forDrain, nil)
	if w.LogFormat != "text" || m.logFormat != "text" || d.logFormat != "text" {
		t.Errorf("default log formats: wrap %s, manager %s, drain %s; want text everywhere", w.LogFormat, m.logFormat, d.logFormat)
	}
}

// TestItem05SeedNames: k8s-prestop-sidecar's bare names work where their
// value can only mean what it meant there; the prefixed name and the flag
// win; the start-up log says which name won.
func TestItem05SeedNames(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*mgrConfig) bool
		from  string // the start-up line's setting=from, or ""
		warn  string // a warned variable, or ""
	}{
		{"PORT alone", map[string]string{"PORT": "3000"}, nil, func(c *mgrConfig) bool { return c.port == 3000 }, "--port from=PORT", ""},
		{"prefixed wins", map[string]string{"PORT": "3000", "SHUTDOWN_MANAGER_PORT": "8091"}, nil,
			func(c *mgrConfig) bool { return c.port == 8091 }, "--port from=SHUTDOWN_MANAGER_PORT", "PORT"},
		{"flag wins", map[string]string{"PORT": "3000"}, []string{"--port", "8092"}, func(c *mgrConfig) bool { return c.port == 8092 }, "--port from=--port", ""},
		{"PORT of another container", map[string]string{"PORT": "http"}, nil, func(c *mgrConfig) bool { return c.port == 8090 }, "", "PORT"},
		{"LOG=yes", map[string]string{"LOG": "yes"}, nil, func(c *mgrConfig) bool { return c.logHits }, "--log-hits from=LOG", ""},
		{"LOG=debug is a level", map[string]string{"LOG": "debug"}, nil, func(c *mgrConfig) bool { return !c.logHits }, "", "LOG"},
		{"INTERVAL not a duration", map[string]string{"INTERVAL": "daily", "COOLDOWN": "30s"}, nil,
			func(c *mgrConfig) bool { return c.interval == 10*time.Second && c.cooldown == 30*time.Second }, "--cooldown from=COOLDOWN", "INTERVAL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearMgrEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cfg, _, err := parseMgrConfig(forManager, c.args)
			if err != nil {
				t.Fatalf("got %v, want the manager to start", err)
			}
			if !c.check(cfg) {
				t.Errorf("settings got %+v", cfg)
			}
			var b bytes.Buffer
			cfg.logSources(hclog.New(&hclog.LoggerOptions{Output: &b}))
			if c.from != "" && !strings.Contains(b.String(), "setting taken from: setting="+c.from) {
				t.Errorf("start-up log lacks %q:\n%s", c.from, b.String())
			}
			if c.warn != "" && !strings.Contains(b.String(), peerWarning+": variable="+c.warn) {
				t.Errorf("start-up log does not warn about %s:\n%s", c.warn, b.String())
			}
		})
	}
}

// TestItem06DoctorSaysInferred: against an Envoy that answers 404 and 400,
// nothing about its features is "ok"; what the version string implies is
// "info" and says it was inferred.
func TestItem06DoctorSaysInferred(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/server_info":
			w.Write([]byte(`{"state":"LIVE","version":"abc/1.36.6/Clean/RELEASE/BoringSSL","uptime_current_epoch":"6s"}`))
		case "/help":
			http.NotFound(w, r)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	cfg, err := loadConfig(mapEnv(map[string]string{"ENVOY_ADMIN_API": srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inferred := false
	checks := doctor.Run(ctx, cfg.doctorSettings())
	for _, c := range checks {
		if c.Level == doctor.OK && (strings.Contains(c.What, "drain_listeners") || strings.Contains(c.What, "405") || strings.Contains(c.What, "skip_exit")) {
			t.Errorf("doctor says ok to what it did not observe: %s", c.What)
		}
		if c.Level == doctor.Info && strings.Contains(c.What, "inferred from version 1.36.6") {
			inferred = true
		}
	}
	if !inferred {
		t.Errorf("doctor does not say what it inferred: %+v", checks)
	}
}

// TestItem07SubcommandArguments: every subcommand answers --help with 0,
// version and help read their arguments, and a typo is not run as a
// program unless one of that name is in PATH.
func TestItem07SubcommandArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"doctor", "--help"}, {"install", "--help"}, {"version", "--help"}, {"help", "doctor"}, {"help", "install"},
		{"help", "--help"}, {"--help", "drain"}, {"inject", "--help"}, {"shutdown-manager", "-h"}} {
		stdout, stderr, code := runBin(t, nil, args...)
		if code != 0 || !strings.Contains(stdout, "Usage:") || !strings.Contains(stdout, "envoy-lifecycle") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and a usage", args, code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"version", "--json"}, {"version", "-o", "json"}} {
		stdout, _, code := runBin(t, nil, args...)
		var v cli.Version
		if err := json.Unmarshal([]byte(stdout), &v); code != 0 || err != nil || v.Version == "" || v.GoVersion == "" {
			t.Errorf("%v: exit %d, %q (%v); want one JSON object", args, code, stdout, err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"version", "--yaml"}, `unexpected argument "--yaml"`},
		{[]string{"help", "foo"}, `unknown topic "foo"`},
		{[]string{"docter"}, `did you mean "envoy-lifecycle doctor"?`},
		{[]string{"shutdown-manger"}, `did you mean "envoy-lifecycle shutdown-manager"?`},
	} {
		_, stderr, code := runBin(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and one line with %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
	// A program one edit from a subcommand, found in PATH, runs.
	dir := t.TempDir()
	argv := app("exit", "3")
	if err := os.Symlink(argv[0], filepath.Join(dir, "drains")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runBin(t, []string{"PATH=" + dir + ":" + os.Getenv("PATH")}, append([]string{"drains"}, argv[1:]...)...)
	if code != 3 {
		t.Errorf("drains (a program in PATH) got exit %d, want 3 (it ran):\n%s", code, stderr)
	}
}

// TestItem08HelpFitsIn100Columns: every help text.
func TestItem08HelpFitsIn100Columns(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"--help"}, {"shutdown-manager", "--help"}, {"drain", "--help"},
		{"doctor", "--help"}, {"install", "--help"}, {"version", "--help"}, {"inject", "--help"}} {
		stdout, _, code := runBin(t, nil, args...)
		if code != 0 || len(stdout) < 100 {
			t.Errorf("%v: exit %d, %d bytes", args, code, len(stdout))
		}
		for i, l := range strings.Split(stdout, "\n") {
			if n := utf8.RuneCountInString(l); n > cli.Width {
				t.Errorf("%v line %d has %d columns: %q", args, i+1, n, l)
			}
		}
	}
}

// TestItem09StartupWarnings: a budget over the grace period, an explicit
// termination log that can't be written, and a configuration error's
// termination message.
func TestItem09StartupWarnings(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	const budgetLine = "shutdown budget exceeds the grace period"
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ENVOY_LIFECYCLE_DRAIN_DEADLINE=60s", "ENVOY_LIFECYCLE_GRACE_PERIOD=30",
		"ENVOY_LIFECYCLE_TERMINATION_LOG=" + filepath.Join(t.TempDir(), "no-such-dir", "msg")}, app("exit", "0")...)
	p.ExitCode()
	out := p.Stderr.String()
	if !strings.Contains(out, "[WARN]  envoy-lifecycle: "+budgetLine) {
		t.Errorf("no warning for a 63s budget in a 30s grace period:\n%s", out)
	}
	if !strings.Contains(out, "[WARN]  envoy-lifecycle: termination log not written") {
		t.Errorf("no warning for an unwritable termination log:\n%s", out)
	}
	e2 := envoytest.Start(t, envoyfake.Options{})
	p = start(t, []string{"ENVOY_ADMIN_API=" + e2.AdminURL(), "ENVOY_LIFECYCLE_GRACE_PERIOD=30"}, app("exit", "0")...)
	p.ExitCode()
	if strings.Contains(p.Stderr.String(), budgetLine) {
		t.Errorf("the default budget (28s) fits 30s, yet:\n%s", p.Stderr.String())
	}

	// Set but empty is none, as documented (not unset, the default path).
	if c, err := loadConfig(mapEnv(map[string]string{"ENVOY_LIFECYCLE_TERMINATION_LOG": ""})); err != nil || c.TerminationLog != "" {
		t.Errorf("ENVOY_LIFECYCLE_TERMINATION_LOG= got %+v, %v; want none", c, err)
	}

	msg := filepath.Join(t.TempDir(), "termination-log")
	_, _, code := runBin(t, []string{"ENVOY_LIFECYCLE_DRAIN=maybe", "ENVOY_LIFECYCLE_TERMINATION_LOG=" + msg}, app("exit", "0")...)
	b, err := os.ReadFile(msg)
	if want := `envoy-lifecycle exit 64: bad configuration: ENVOY_LIFECYCLE_DRAIN="maybe"`; code != exitUsage || err != nil || !strings.HasPrefix(string(b), want) {
		t.Errorf("config error: exit %d, termination message %q (%v); want %d and %q", code, b, err, exitUsage, want)
	}
}

// goDuration is how a duration reads when logged as a Go value or string.
var goDuration = regexp.MustCompile(`^-?[0-9.]+(ns|us|µs|ms|s|m|h)([0-9.]+(ns|us|µs|ms|s|m|h))*$`)

// checkDurationsInSeconds fails on any JSON log value that is a Go duration
// string, and any _s key that is not a number; it returns how many _s keys
// it saw.
func checkDurationsInSeconds(t *testing.T, what, logs string) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("%s: not a JSON line: %q", what, line)
			continue
		}
		for k, v := range m {
			if s, ok := v.(string); ok && goDuration.MatchString(s) {
				t.Errorf("%s: %s=%q is a duration string, want %s_s in seconds: %s", what, k, s, k, line)
			}
			if strings.HasSuffix(k, "_s") {
				n++
				if _, ok := v.(float64); !ok {
					t.Errorf("%s: %s=%v (%T) is not a number of seconds: %s", what, k, v, v, line)
				}
			}
		}
	}
	return n
}

// TestItem11LogDurationsInSeconds: the wrap mode and drain log every
// duration as seconds under a _s key.
func TestItem11LogDurationsInSeconds(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	p := start(t, []string{"ENVOY_ADMIN_API=" + e.AdminURL(), "ENVOY_LIFECYCLE_LOG_FORMAT=json"}, app("exit", "0")...)
	p.ExitCode()
	if n := checkDurationsInSeconds(t, "wrap", p.Stderr.String()); n == 0 {
		t.Errorf("wrap logged no duration:\n%s", p.Stderr.String())
	}
	e2 := envoytest.Start(t, envoyfake.Options{})
	_, stderr, _ := runBin(t, []string{"ENVOY_LIFECYCLE_LOG_FORMAT=json", "SHUTDOWN_MANAGER_LOG_TO_PID1=false"}, "drain", "--envoy-admin", e2.AdminURL(),
		"--delay", "0", "--period", "20ms", "--ready-file", "", "--state-file", "")
	if n := checkDurationsInSeconds(t, "drain", stderr); n == 0 {
		t.Errorf("drain logged no duration:\n%s", stderr)
	}
}

// TestItem12LeftoverStateFile: a state file from an earlier run against an
// Envoy that has restarted since, or another Envoy, is removed with one info
// line: no error, no /healthcheck/ok.
func TestItem12LeftoverStateFile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, admin, line string }{
		{"envoy restarted since", "", "removed a state file from before envoy's last start; nothing to undo"},
		{"another envoy", "http://127.0.0.1:1", "removed a state file from a run against another envoy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := envoytest.Start(t, envoyfake.Options{})
			admin := c.admin
			if admin == "" {
				admin = e.AdminURL()
			}
			ready, state := mgrFiles(t)
			b, _ := json.Marshal(map[string]any{"healthcheck_failed": true, "listeners_drained": true, "admin": admin, "pid": 1,
				"at": time.Now().Add(-time.Hour).UTC()})
			if err := os.WriteFile(state, b, 0o644); err != nil {
				t.Fatal(err)
			}
			m := startManager(t, nil, "--envoy-admin", e.AdminURL(), "--ready-file", ready, "--state-file", state)
			testproc.WaitFor(t, "the state file to be handled", func() bool { return logged(m.Stderr.String(), c.line) })
			if exists(state) {
				t.Error("state file kept")
			}
			if strings.Contains(m.Stderr.String(), `"@level":"error"`) {
				t.Errorf("logged an error:\n%s", m.Stderr.String())
			}
			for _, r := range e.Requests() {
				if r.Path == "/healthcheck/ok" {
					t.Errorf("POST /healthcheck/ok sent to an envoy that was never drained")
				}
			}
		})
	}
}

// TestItem13VersionFromBuildInfo: a plain go build of a git clone reports
// the clone's commit (go build stamps it by default; this machine's GOFLAGS
// turn that off, hence -buildvcs=true). The clone is of this checkout's
// HEAD: go build does not see the revision of a git worktree.
func TestItem13VersionFromBuildInfo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipped in -short: builds the binary from a fresh clone")
	}
	dir := t.TempDir()
	if out, err := exec.Command("git", "clone", "-q", "--no-hardlinks", ".", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: not a git checkout (a source archive has no revision to report): %s", out)
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "envoy-lifecycle")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	var v cli.Version
	if err != nil || json.Unmarshal(out, &v) != nil {
		t.Fatalf("version --json got %q, %v", out, err)
	}
	// Go also derives a pseudo-version (v0.0.0-TIME-REV) from the commit.
	if want := strings.TrimSpace(string(head)); v.Commit != want || !strings.HasPrefix(v.Version, "v0.0.0-") || v.BuildTime == "" || v.Modified {
		t.Errorf("version --json got %s, want commit %s, a pseudo-version and the commit's time", out, want)
	}
	line, _ := exec.Command(bin, "version").Output()
	if want := "(commit " + strings.TrimSpace(string(head))[:12]; !strings.Contains(string(line), want) {
		t.Errorf("version got %q, want %q", line, want)
	}
}

// TestItem14Messages: each message the issue found garbled.
func TestItem14Messages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		env, args []string
		want      string
		not       string
	}{
		{"install into a missing directory", nil, []string{"install", "/nonexistent/a/b"}, "/nonexistent/a/b: no such directory", "not a directory"},
		{"inject reads a directory", nil, []string{"inject", "--preset", "envoy", "--dry-run", "/"}, "cannot read /: is a directory", "read read"},
		{"inject reads a missing file", nil, []string{"inject", "--preset", "envoy", "--dry-run", "/nonexistent.yaml"}, "cannot read /nonexistent.yaml: no such file", "read open"},
		{"kill api without scheme", []string{"ENVOY_KILL_API=localhost:1"}, app("exit", "0"), `ENVOY_KILL_API="localhost:1": missing http:// or https://`, "scheme \"localhost\""},
		{"quit retries abc", []string{"ENVOY_LIFECYCLE_QUIT_RETRIES=abc"}, app("exit", "0"), "(valid: a whole number of 1 or more)", "0 or more"},
		{"quit retries 0", []string{"ENVOY_LIFECYCLE_QUIT_RETRIES=0"}, app("exit", "0"), "(valid: a whole number of 1 or more)", "0 or more"},
		{"one warning", nil, []string{"doctor"}, "0 problems, 1 warning\n", "1 warnings"},
		{"signal name", nil, app("die-by", "KILL"), `status="killed by SIGKILL"`, "signal killed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, _ := runBin(t, c.env, c.args...)
			out := stdout + stderr
			if !strings.Contains(out, c.want) || strings.Contains(out, c.not) {
				t.Errorf("got %q, want %q and not %q", out, c.want, c.not)
			}
		})
	}
}

// TestItem04QueryDurationsFollowTheRule: the shutdown manager's query
// parameters (?delay=&period=&deadline=, parsed in shutdownmgr) read every
// documented duration form as the settings do.
func TestItem04QueryDurationsFollowTheRule(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"5", "2.5", "0", "0.1", "500ms", "1m30s", "24h", " 30 ", "-1", "-1s", "abc", "1d", "5 s", ""} {
		want, werr := settings.ParseDuration(in)
		got, gerr := shutdownmgr.ParseDuration(in)
		if got != want || (werr == nil) != (gerr == nil) {
			t.Errorf("%q: settings %v, %v; shutdownmgr %v, %v", in, want, werr, got, gerr)
		}
	}
}
