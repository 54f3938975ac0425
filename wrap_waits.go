package main

// The wrap mode's two waits that watch Envoy instead of the clock: the
// adaptive drain delay (DRAIN_DELAY=auto) and the readiness conditions after
// LIVE (READY_*).

import (
	"errors"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/readiness"
)

// resolveWaits reads DRAIN_DELAY (a duration or auto), its auto bounds and
// the READY_* conditions. It runs before resolveDrain, which holds the
// fixed delay against the deadline.
func (c *Config) resolveWaits() error {
	v := strings.TrimSpace(c.DrainDelay)
	if strings.EqualFold(v, "auto") {
		c.drainAuto = true
	} else {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY", Value: c.DrainDelay, Valid: "auto, or a duration of 0 or more such as 5s", Err: errors.New("cannot parse")}
		}
		c.drainDelay = d
	}
	for _, d := range []struct {
		name string
		d    time.Duration
		pos  bool // must be > 0
	}{
		{"ENVOY_LIFECYCLE_DRAIN_QUIET", c.DrainQuiet, true},
		{"ENVOY_LIFECYCLE_DRAIN_DELAY_MIN", c.DrainDelayMin, false},
		{"ENVOY_LIFECYCLE_DRAIN_DELAY_MAX", c.DrainDelayMax, false},
		{"ENVOY_LIFECYCLE_READY_CLUSTERS_TIMEOUT", c.ReadyClustersTimeout, true},
		{"ENVOY_LIFECYCLE_READY_NO_WARMING_TIMEOUT", c.ReadyNoWarmingTimeout, true},
		{"ENVOY_LIFECYCLE_READY_URL_TIMEOUT", c.ReadyURLTimeout, true},
	} {
		if d.d < 0 || d.pos && d.d == 0 {
			valid := "a duration of 0 or more"
			if d.pos {
				valid = "a duration greater than 0"
			}
			return &ConfigError{Name: d.name, Value: os.Getenv(d.name), Valid: valid, Err: errors.New("out of range")}
		}
	}
	if c.drainAuto {
		max := c.drainDelayMax()
		switch {
		case max == 0:
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY_MAX", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY_MAX"),
				Valid: "a duration greater than 0 when DRAIN_DELAY=auto and DRAIN_DEADLINE=0: nothing else would bound the wait", Err: errors.New("unbounded")}
		case c.DrainDeadline > 0 && max >= c.DrainDeadline:
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY_MAX", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY_MAX"),
				Valid: "less than ENVOY_LIFECYCLE_DRAIN_DEADLINE (" + c.DrainDeadline.String() + "), which includes it", Err: errors.New("out of range")}
		case c.DrainDelayMin > max:
			return &ConfigError{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY_MIN", Value: os.Getenv("ENVOY_LIFECYCLE_DRAIN_DELAY_MIN"),
				Valid: "at most the auto delay's maximum (" + max.String() + ")", Err: errors.New("out of range")}
		}
	}

	var names []string
	for _, n := range c.ReadyClusters {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if slices.Contains(names, n) {
			return &ConfigError{Name: "ENVOY_LIFECYCLE_READY_CLUSTERS", Value: os.Getenv("ENVOY_LIFECYCLE_READY_CLUSTERS"), Valid: "comma-separated cluster names, each once", Err: errors.New("duplicate " + n)}
		}
		names = append(names, n)
	}
	c.ReadyClusters = names
	if c.ReadyURL != "" {
		if err := checkHTTPURL(c.ReadyURL); err != nil {
			return &ConfigError{Name: "ENVOY_LIFECYCLE_READY_URL", Value: c.ReadyURL, Valid: "an http:// or https:// URL", Err: err}
		}
	}
	return nil
}

// drainDelayMax is DRAIN_DELAY_MAX, or half of DRAIN_DEADLINE when it is 0:
// the listener drain keeps the other half.
func (c *Config) drainDelayMax() time.Duration {
	if c.DrainDelayMax > 0 {
		return c.DrainDelayMax
	}
	return c.DrainDeadline / 2
}

// drainQuiet is the adaptive delay, nil unless DRAIN_DELAY=auto. When the
// traffic counters cannot be read it falls back to the fixed default.
func (c *Config) drainQuiet(log hclog.Logger) *quit.Quiet {
	if !c.drainAuto {
		return nil
	}
	return &quit.Quiet{
		Window:   c.DrainQuiet,
		Min:      c.DrainDelayMin,
		Max:      c.drainDelayMax(),
		Fallback: lifecycle.DefaultDrainDelay,
		Logger:   log,
	}
}

// arrivals selects the counters of new inbound traffic with the same
// DRAIN_INCLUDE/DRAIN_EXCLUDE as the drain's count, on the side DRAIN_COUNT
// names; the other side keeps its default.
func (c *Config) arrivals() envoy.Arrivals {
	if c.DrainInclude == "" && c.DrainExclude == "" {
		return envoy.Arrivals{}
	}
	if c.DrainCount == "requests" {
		return envoy.Arrivals{Request: c.selector}
	}
	return envoy.Arrivals{Conn: c.selector}
}

// readinessConditions are the READY_* conditions, in a fixed order.
func (c *Config) readinessConditions(admin *envoy.Client) []readiness.Condition {
	var conds []readiness.Condition
	if len(c.ReadyClusters) > 0 {
		conds = append(conds, readiness.Condition{Name: "clusters " + strings.Join(c.ReadyClusters, ","),
			Check: readiness.ClustersServing(admin, c.ReadyClusters), Deadline: c.ReadyClustersTimeout, Fatal: c.ReadyClustersFatal})
	}
	if c.ReadyNoWarming {
		conds = append(conds, readiness.Condition{Name: "nothing warming",
			Check: readiness.NothingWarming(admin), Deadline: c.ReadyNoWarmingTimeout, Fatal: c.ReadyNoWarmingFatal})
	}
	if c.ReadyURL != "" {
		conds = append(conds, readiness.Condition{Name: "GET " + c.ReadyURL,
			Check: readiness.HTTPGet(c.ReadyURL, c.RequestTimeout), Deadline: c.ReadyURLTimeout, Fatal: c.ReadyURLFatal})
	}
	return conds
}
