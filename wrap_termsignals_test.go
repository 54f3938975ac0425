package main

import (
	"strings"
	"testing"
)

// Issue 14.15: an empty item in ENVOY_LIFECYCLE_TERM_SIGNALS (a trailing
// comma) is ignored; a list of nothing but empty items is still refused.
func TestTermSignalsEmptyItems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		value string
		want  int
	}{
		{"TERM,", 3},
		{"TERM, ,INT", 3},
		{",", exitUsage},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			t.Parallel()
			p := start(t, []string{"ENVOY_LIFECYCLE_TERM_SIGNALS=" + c.value}, app("exit", "3")...)
			if got := p.ExitCode(); got != c.want {
				t.Errorf("exit code got %d, want %d; stderr:\n%s", got, c.want, p.Stderr.String())
			}
			if c.want == exitUsage && !strings.Contains(p.Stderr.String(), "ENVOY_LIFECYCLE_TERM_SIGNALS") {
				t.Errorf("the error does not name the variable:\n%s", p.Stderr.String())
			}
		})
	}
}
