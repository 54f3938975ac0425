package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/shutdownmgr"
)

// The drain command's flags are the rows of the shutdown manager's table
// (shutdownmanager.go) marked forDrain: the two read the same drain settings.

// drainUsage heads `envoy-lifecycle drain --help`, above the flags.
var drainUsage = fmt.Sprintf(`Usage: envoy-lifecycle drain [FLAGS]

Drains Envoy once, as an exec preStop hook: fail health checks, wait, drain
listeners, poll connections until the minimum or the deadline, then write the
ready file. Exit codes: 0 drained, %d deadline with connections open, %d Envoy
admin unreachable (at once, without waiting the delay), %d Envoy's /stats
answer too large to count connections, %d ready file not written, %d bad
settings, 128+n ended by signal n.

`, exitDrainDeadline, exitUnavailable, exitStatsTooLarge, exitCantCreate, exitUsage)

// runDrain is `envoy-lifecycle drain`: one drain, as an exec preStop hook.
// Exit codes: see drainUsage; a signal ends it without the ready file.
func runDrain(args []string, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	cfg, code, ok := parseOrExit("drain", forDrain, args, stdout, stderr)
	if !ok {
		return code
	}
	out, pid1Err := shutdownmgr.LogOutput(cfg.logToPID1, stderr, pid1Stdout, os.Getpid())
	root := cfg.newLogger(out)
	log := root.Named("drain")
	cfg.logSources(log)
	if pid1Err != nil {
		log.Warn("cannot copy logs to pid 1's stdout; logging to stderr only", "path", pid1Stdout, "error", pid1Err)
	}
	admin, err := envoy.New(cfg.adminURL, envoy.Options{Timeout: cfg.requestTimeout, Logger: root.Named("envoy")})
	if err != nil {
		fmt.Fprintf(stderr, "envoy-lifecycle drain: %v\n", err)
		return exitCode(err)
	}
	once := shutdownmgr.Once{Drain: cfg.drain(admin, log), ReadyFile: cfg.readyFile, StateFile: cfg.stateFile, Logger: log}
	res, sig, err := once.RunUntil(sigs)
	switch {
	case sig != nil:
		return exitCode(sig)
	case err != nil: // the ready file: its waiters would wait in vain
		return exitCode(err)
	}
	return exitCode(res.Reason)
}
