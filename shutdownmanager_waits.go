package main

import (
	"strings"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/quit"
)

// autoDelaySetter reads --delay: "auto", or a duration (which turns auto
// off again, so a later flag wins over the environment).
func autoDelaySetter(dst *time.Duration, auto *bool) func(string) error {
	set := durationSetter(dst)
	return func(s string) error {
		if strings.EqualFold(strings.TrimSpace(s), "auto") {
			*auto = true
			return nil
		}
		if err := set(s); err != nil {
			return err
		}
		*auto = false
		return nil
	}
}

// autoDelay is the drain's adaptive delay, nil unless --delay=auto. The
// fixed --delay (5s by default) stays its fallback for missing stats.
func (c *mgrConfig) autoDelay() *quit.Quiet {
	if !c.delayAuto {
		return nil
	}
	return &quit.Quiet{Window: c.quietWindow, Max: c.delayMax}
}

// arrivals watches new traffic with the same --include/--exclude as the
// count, on the side --count names.
func (c *mgrConfig) arrivals() envoy.Arrivals {
	if c.include == nil && c.exclude == nil {
		return envoy.Arrivals{}
	}
	if c.count == "requests" {
		return envoy.Arrivals{Request: c.selector}
	}
	return envoy.Arrivals{Conn: c.selector}
}
