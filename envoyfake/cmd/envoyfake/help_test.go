package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpPrintsUsage: -h and --help print the flags and exit 0 instead of
// starting a fake (they used to be ignored as Envoy flags).
func TestHelpPrintsUsage(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help", "-help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr, nil); code != exitOK {
			t.Errorf("%s: exit got %d, want %d", arg, code, exitOK)
		}
		if out := stderr.String(); !strings.Contains(out, "-admin") || !strings.Contains(out, "-pilot-agent") {
			t.Errorf("%s: usage got %q, want the flags listed", arg, out)
		}
		if strings.Contains(stdout.String(), "envoyfake admin=") {
			t.Errorf("%s: a fake started: %q", arg, stdout.String())
		}
	}
}
