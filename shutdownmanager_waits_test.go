package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestManagerAutoDelayFlags(t *testing.T) {
	t.Setenv("SHUTDOWN_MANAGER_DELAY", "auto")
	c, _, err := parseMgrConfig(forManager, []string{"--quiet-window=300ms", "--delay-max=20s"})
	if err != nil {
		t.Fatal(err)
	}
	q := c.drain(nil, hclog.NewNullLogger()).Quiet
	if q == nil || q.Window != 300*time.Millisecond || q.Max != 20*time.Second || c.delay != 5*time.Second {
		t.Errorf("SHUTDOWN_MANAGER_DELAY=auto got %+v, delay %v; want window 300ms, max 20s, fallback 5s", q, c.delay)
	}
	c, _, err = parseMgrConfig(forManager, []string{"--delay=2"}) // the flag wins over the environment
	if err != nil {
		t.Fatal(err)
	}
	if d := c.drain(nil, hclog.NewNullLogger()); d.Quiet != nil || d.Delay != 2*time.Second {
		t.Errorf("--delay=2 over auto got quiet %+v, delay %v; want a fixed 2s", d.Quiet, d.Delay)
	}
	for _, args := range [][]string{{"--delay=soon"}, {"--quiet-window=0"}, {"--delay-max=-1s"}} {
		_, _, err := parseMgrConfig(forManager, args)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "valid:") || ce.Name != strings.Split(args[0], "=")[0] {
			t.Errorf("%v: error got %v, want a *ConfigError naming the flag", args, err)
		}
	}
}
