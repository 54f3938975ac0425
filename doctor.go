package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"envoy-lifecycle/doctor"
)

// doctorTimeout bounds the whole report: doctor must answer even when the
// proxy does not.
const doctorTimeout = 10 * time.Second

// runDoctor is `envoy-lifecycle doctor`: it resolves the configuration as the
// wrap mode would, checks the environment and prints a short report. It
// exits 0 when nothing would break, 1 when something would, and 64 on a bad
// configuration.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprint(stdout, wrapHelp(`Usage: envoy-lifecycle doctor

Resolves the wrap mode's configuration from the environment, as the wrap mode would, asks the proxy what it serves (GET /server_info, /help, /stats; nothing that changes its state) and prints a report: "ok" for what it observed, "info" for what it inferred, "warn" and "FAIL" for problems. Exit codes: 0 nothing would break, 1 something would, 64 bad configuration. Run it with the app container's environment, e.g. kubectl exec POD -c app -- envoy-lifecycle doctor.
`))
			return 0
		}
		fmt.Fprintf(stderr, "envoy-lifecycle doctor: unexpected argument %q (valid: none, or --help; doctor reads the same environment as the wrap mode)\n", args[0])
		return exitUsage
	}
	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitCode(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), doctorTimeout)
	defer cancel()
	checks := doctor.Run(ctx, cfg.doctorSettings())
	if doctor.Print(stdout, checks) > 0 {
		return exitProblems
	}
	return 0
}

// doctorSettings are what doctor checks of these settings.
func (c *Config) doctorSettings() doctor.Settings {
	s := doctor.Settings{
		AdminAPI:             c.AdminAPI,
		IstioQuitAPI:         c.IstioQuitAPI,
		GenericQuitEndpoints: c.GenericQuitEndpoints,
		RequestTimeout:       c.RequestTimeout,
		Drain:                c.Drain,
		Selector:             c.selector,
		DrainDeadline:        c.DrainDeadline,
		StopTimeout:          c.StopTimeout,
		Grace:                c.grace,
		GraceSet:             c.graceSet,
		AutoDelay:            c.drainQuiet(nil),
		Arrivals:             c.arrivals(),
		Readiness:            c.readinessConditions,
	}
	for _, w := range c.warnings {
		s.Warnings = append(s.Warnings, w.String())
	}
	return s
}
