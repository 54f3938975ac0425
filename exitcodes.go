package main

import (
	"errors"
	"net"
	"syscall"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/shutdownmgr"
)

// Exit codes of our own. The app's codes pass through unchanged (0-255);
// 126 and 127 mean the command is not executable or not found, and 128+n
// that the app (or we, while waiting) died of or got signal n. Ours follow
// sysexits.h so they stay clear of the shell's.
const (
	exitProblems      = 1  // doctor: a check failed, something would break at run time
	exitUsage         = 64 // bad command line or configuration (EX_USAGE)
	exitStatsTooLarge = 65 // drain: Envoy's /stats answer too large to count connections (EX_DATAERR)
	exitUnavailable   = 69 // Envoy not LIVE within QUIT_WITHOUT_ENVOY_TIMEOUT, a fatal READY_* condition not met, or its admin unreachable (EX_UNAVAILABLE)
	exitSoftware      = 70 // internal error (EX_SOFTWARE)
	exitCannotListen  = 71 // the shutdown manager cannot listen on its address (EX_OSERR)
	exitCantCreate    = 73 // drain: the ready file could not be written (EX_CANTCREAT)
	exitDrainDeadline = 75 // drain: connections still open at the deadline (EX_TEMPFAIL)
)

// wrapCodes are the codes the wrap mode's runner uses for its own failures.
var wrapCodes = lifecycle.Codes{Unavailable: exitUnavailable, Software: exitSoftware}

// exitCode is the one place that turns what a package returned into an exit
// code. It reads types and constants, never message text, so rewording a
// message cannot change a code.
func exitCode(what any) int {
	switch w := what.(type) {
	case nil:
		return 0
	case syscall.Signal:
		return 128 + int(w)
	case quit.Reason:
		switch w {
		case quit.ReasonDeadline:
			return exitDrainDeadline
		case quit.ReasonUnreachable:
			return exitUnavailable
		case quit.ReasonStatsTooLarge:
			return exitStatsTooLarge
		}
		return 0
	case error:
		var (
			ce *ConfigError
			ae *envoy.AddressError
			ue *usageError
			oe *net.OpError
		)
		switch {
		case errors.As(w, &ce), errors.As(w, &ae), errors.As(w, &ue):
			return exitUsage
		case errors.As(w, &oe) && oe.Op == "listen":
			return exitCannotListen
		case errors.Is(w, shutdownmgr.ErrReadyFile):
			return exitCantCreate
		}
	}
	return exitSoftware
}
