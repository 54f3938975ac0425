package doctor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
	"envoy-lifecycle/internal/testproc"
)

// The checks in-process, against the fake; the built binary's report is
// TestDoctor in package main.
func TestRun(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	live := Settings{AdminAPI: e.AdminURL(), RequestTimeout: time.Second, Drain: true, Selector: envoy.DefaultConnSelector(),
		DrainDeadline: 15 * time.Second, StopTimeout: 10 * time.Second, Grace: 30 * time.Second, GraceSet: true}
	cases := []struct {
		name  string
		edit  func(s *Settings)
		fails int
		want  []string
	}{
		{"healthy", func(*Settings) {}, 0, []string{"state LIVE", "admin address is local", "connection stat found", "shutdown budget 28s fits the grace period 30s"}},
		{"grace too short", func(s *Settings) { s.Grace = 20 * time.Second }, 1, []string{"FAIL", "exceeds the grace period 20s"}},
		{"no budget", func(s *Settings) { s.StopTimeout = 0 }, 1, []string{"no shutdown budget"}},
		{"grace unset", func(s *Settings) { s.GraceSet = false }, 0, []string{"Kubernetes' default"}},
		{"no admin", func(s *Settings) { s.AdminAPI = "" }, 0, []string{"warn", "ENVOY_ADMIN_API is not set", "no graceful drain"}},
		{"unreachable", func(s *Settings) { s.AdminAPI = "http://127.0.0.1:1" }, 1, []string{"FAIL", "not reachable"}},
		{"istio not local", func(s *Settings) { s.IstioQuitAPI = "http://10.0.0.1:15020" }, 1, []string{"not local: pilot-agent only takes quit requests from localhost"}},
	}
	for _, c := range cases {
		s := live
		c.edit(&s)
		ctx, cancel := context.WithTimeout(context.Background(), testproc.Timeout)
		checks := Run(ctx, s)
		cancel()
		var out bytes.Buffer
		if got := Print(&out, checks); got != c.fails {
			t.Errorf("%s: fails got %d, want %d\n%s", c.name, got, c.fails, out.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: report lacks %q:\n%s", c.name, w, out.String())
			}
		}
	}
	// Doctor changes nothing.
	if testproc.IsClosed(e.Quit()) {
		t.Error("doctor made envoy quit")
	}
	for _, r := range e.Requests() {
		if r.Method != "GET" {
			t.Errorf("doctor sent %s %s, want only GETs", r.Method, r.Path)
		}
	}
}

// TestPrintRedacts: the report hides the secrets of every URL in it.
func TestPrintRedacts(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	Print(&out, []Check{{Fail, `kill url "http://u:s3cret@10.0.0.1/quit?token=s3cret" is not local`}, {OK, "istio quit api http://127.0.0.1:15020 answers"}})
	if s := out.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, `"http://REDACTED@10.0.0.1/quit?token=REDACTED"`) || !strings.Contains(s, "http://127.0.0.1:15020 answers") {
		t.Errorf("report got:\n%s\nwant the URL's password and token REDACTED, the rest as it was", s)
	}
}
