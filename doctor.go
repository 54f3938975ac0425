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
		fmt.Fprintf(stderr, "envoy-lifecycle doctor: unexpected argument %q (doctor takes none; it reads the same environment as the wrap mode)\n", args[0])
		return exitUsage
	}
	cfg, err := LoadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle: %v\n", err)
		return exitCode(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), doctorTimeout)
	defer cancel()
	checks := doctor.Run(ctx, doctor.Settings{
		AdminAPI:             cfg.AdminAPI,
		IstioQuitAPI:         cfg.IstioQuitAPI,
		GenericQuitEndpoints: cfg.GenericQuitEndpoints,
		RequestTimeout:       cfg.RequestTimeout,
		Drain:                cfg.Drain,
		Selector:             cfg.selector,
		DrainDeadline:        cfg.DrainDeadline,
		StopTimeout:          cfg.StopTimeout,
		Grace:                cfg.grace,
		GraceSet:             cfg.GracePeriod != "",
		AutoDelay:            cfg.drainQuiet(nil),
		Arrivals:             cfg.arrivals(),
		Readiness:            cfg.readinessConditions,
	})
	if doctor.Print(stdout, checks) > 0 {
		return exitProblems
	}
	return 0
}
