package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/settings"
	"envoy-lifecycle/shutdownmgr"
	"envoy-lifecycle/termlog"
)

// readmeTable returns the rows of the markdown tables in file whose first
// cell is code: first cell (backticks kept) to its cells.
func readmeTable(t *testing.T, file string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if _, seen := rows[cells[0]]; !seen { // the settings table comes first
			rows[cells[0]] = cells
		}
	}
	return rows
}

// none is how the tables write "no default".
func none(s string) bool { return s == "" || s == "-" || s == "–" }

// TestWrapDefaultsDocumented: README's wrap mode table gives every variable
// with the default the code (and so help) has.
func TestWrapDefaultsDocumented(t *testing.T) {
	t.Parallel()
	rows := readmeTable(t, "README.md")
	// Defaults the code applies outside the table: from resolve and
	// parseGrace.
	computed := map[string]string{
		"WAIT_FOR_ENVOY_TIMEOUT":       "0",
		"QUIT_WITHOUT_ENVOY_TIMEOUT":   settings.FormatDuration(lifecycle.DefaultQuitWithoutEnvoy) + " if neither is set",
		"ENVOY_LIFECYCLE_GRACE_PERIOD": strconv.Itoa(int(defaultGrace / time.Second)),
		// processGroup: from the terminal on stdin.
		"ENVOY_LIFECYCLE_PROCESS_GROUP": "auto",
	}
	for _, e := range settings.Vars(wrapDefaults()) {
		row, ok := rows["`"+e.Name+"`"]
		if !ok {
			t.Errorf("README.md has no row for %s", e.Name)
			continue
		}
		want := e.Default
		if c, ok := computed[e.Name]; ok {
			want = c
		}
		if got := row[1]; got != want && !(none(got) && none(want)) {
			t.Errorf("README.md gives %s the default %q, the code %q", e.Name, got, want)
		}
	}
	// The help text says the computed ones in words.
	for name, want := range map[string]string{
		"QUIT_WITHOUT_ENVOY_TIMEOUT":   "Default " + settings.FormatDuration(lifecycle.DefaultQuitWithoutEnvoy) + " when neither is set",
		"ENVOY_LIFECYCLE_GRACE_PERIOD": "Kubernetes' default, " + settings.FormatDuration(defaultGrace),
	} {
		for _, e := range settings.Vars(wrapDefaults()) {
			if e.Name == name && !strings.Contains(e.Desc, want) {
				t.Errorf("help for %s lacks %q: %q", name, want, e.Desc)
			}
		}
	}
}

// TestWrapDefaultsAreLifecycles: the values the wrap mode runs with, and
// which inject and help read, are lifecycle's.
func TestWrapDefaultsAreLifecycles(t *testing.T) {
	clearEnv(t) // not parallel: it sets the environment
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		name      string
		got, want any
	}{
		{"DrainDelay", c.DrainDelay, lifecycle.DefaultDrainDelaySetting},
		{"drainAuto", c.drainAuto, true},
		{"DrainDeadline", c.DrainDeadline, lifecycle.DefaultDrainDeadline},
		{"StopTimeout", c.StopTimeout, lifecycle.DefaultStopTimeout},
		{"QuitRequestTimeout", c.QuitRequestTimeout, lifecycle.DefaultQuitRequestTimeout},
		{"QuitWithoutEnvoyTimeout", c.QuitWithoutEnvoyTimeout, lifecycle.DefaultQuitWithoutEnvoy},
		{"TerminationLog", c.TerminationLog, termlog.Default},
		{"ShutdownBudget", c.ShutdownBudget(), lifecycle.DefaultShutdownBudget},
		{"grace", c.grace, defaultGrace},
	} {
		if x.got != x.want {
			t.Errorf("%s got %v, want %v", x.name, x.got, x.want)
		}
	}
}

// TestBudgetDocumented: README's sizing section states lifecycle's budget.
func TestBudgetDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := func(d time.Duration) int { return int(d / time.Second) }
	for _, want := range []string{
		fmt.Sprintf("`DRAIN_DEADLINE + STOP_TIMEOUT + %s`", settings.FormatDuration(lifecycle.QuitBudget)),
		fmt.Sprintf("at least %d s", s(lifecycle.QuitBudget)),
		fmt.Sprintf("%d + %d + %d = %d s", s(lifecycle.DefaultDrainDeadline), s(lifecycle.DefaultStopTimeout), s(lifecycle.QuitBudget), s(lifecycle.DefaultShutdownBudget)),
		fmt.Sprintf("Kubernetes' default of %d s", s(defaultGrace)),
		fmt.Sprintf("terminationGracePeriodSeconds >= DRAIN_DEADLINE + STOP_TIMEOUT + %d", s(lifecycle.QuitBudget)),
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
}

// TestManagerDefaultsDocumented: shutdownmgr/README.md's table gives every
// flag the default the code (and so --help) has.
func TestManagerDefaultsDocumented(t *testing.T) {
	t.Parallel()
	rows := readmeTable(t, "shutdownmgr/README.md")
	var cfg mgrConfig
	for _, s := range cfg.settings() {
		row, ok := rows["`--"+strings.Join(s.flags, "`<br>`--")+"`"]
		if !ok {
			t.Errorf("shutdownmgr/README.md has no row for --%s and its aliases", s.flags[0])
			continue
		}
		got := strings.Trim(row[2], "`")
		if got != s.def && !(none(got) && s.def == "") {
			t.Errorf("shutdownmgr/README.md gives --%s the default %q, the code %q", s.flags[0], got, s.def)
		}
	}
	b, err := os.ReadFile("shutdownmgr/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("`--shutdown-timeout` (%d s by default)", int(shutdownmgr.DefaultShutdownTimeout/time.Second)); !strings.Contains(string(b), want) {
		t.Errorf("shutdownmgr/README.md lacks %q", want)
	}
}
