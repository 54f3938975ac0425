package main

import (
	"strings"
	"testing"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/envoytest"
)

func TestDoctorWaits(t *testing.T) {
	t.Parallel()
	e := envoytest.Start(t, envoyfake.Options{})
	if err := e.SetCluster("web", envoyfake.UpstreamHost{Address: "10.0.0.5:80"}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetCluster("db", envoyfake.UpstreamHost{Address: "10.0.0.6:5432", Flags: []string{envoyfake.FlagFailedOutlierCheck}}); err != nil {
		t.Fatal(err)
	}
	e.SetWarming(1, 0)
	admin := "ENVOY_ADMIN_API=" + e.AdminURL()
	cases := []struct {
		name     string
		env      []string
		wantCode int
		want     []string
	}{
		{"auto delay and conditions met or not", []string{admin, "ENVOY_LIFECYCLE_DRAIN_DELAY=auto", "ENVOY_LIFECYCLE_READY_CLUSTERS=web",
			"ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL=true", "ENVOY_LIFECYCLE_READY_NO_WARMING=true"}, 0,
			[]string{"ok    DRAIN_DELAY=auto: 2 new-traffic counters match, 0 connections and requests so far; waits for 1s of quiet, between 0s and 7.5s",
				"ok    readiness condition clusters web: met (web: 1 of 1 hosts serving)",
				"warn  readiness condition nothing warming: not met (start anyway) (warming clusters=1 listeners=0 workers_started=true)"}},
		{"fatal condition not met", []string{admin, "ENVOY_LIFECYCLE_READY_CLUSTERS=web,db", "ENVOY_LIFECYCLE_READY_CLUSTERS_FATAL=true"}, exitProblems,
			[]string{"FAIL  readiness condition clusters web,db: not met (fatal) (web: 1 of 1 hosts serving; db: 0 of 1 hosts serving)"}},
		// DRAIN_INCLUDE replaces the connection side only (DRAIN_COUNT=connections):
		// the request counter still counts.
		{"auto delay with a custom connection selector", []string{admin, "ENVOY_LIFECYCLE_DRAIN_DELAY=auto", "ENVOY_LIFECYCLE_DRAIN_INCLUDE=^nothing$"}, 0,
			[]string{"ok    DRAIN_DELAY=auto: 1 new-traffic counters match"}},
	}
	for _, c := range cases {
		out, code := runDoctorBin(t, c.env...)
		if code != c.wantCode {
			t.Errorf("%s: exit code got %d, want %d\n%s", c.name, code, c.wantCode, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: report lacks %q:\n%s", c.name, w, out)
			}
		}
	}
}
