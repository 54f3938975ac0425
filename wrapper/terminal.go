package wrapper

import (
	"os"
	"syscall"
)

// takeTerminal reports whether an app started in its own process group with
// stdin f must be given the terminal: f is the wrapper's controlling terminal
// and the wrapper's group is its foreground, so the app would otherwise be
// stopped (SIGTTIN) on its first read, and Ctrl-C would reach the wrapper
// alone. tini does the same; unlike tini, a wrapper running in the background
// never takes the terminal from its shell.
func takeTerminal(f *os.File) bool {
	fg, err := foreground(f.Fd())
	return err == nil && fg == syscall.Getpgrp()
}

// giveTerminalBack makes the wrapper's group the foreground of tty again
// once the app that had it is gone, so the shell or terminal that ran the
// wrapper gets it back as it left it.
func (c *Child) giveTerminalBack(tty *os.File) {
	me := syscall.Getpgrp()
	if fg, err := foreground(tty.Fd()); err == nil && fg == me {
		return
	}
	if err := setForeground(tty.Fd(), me); err != nil {
		c.log.Warn("cannot take the terminal back", "error", err)
		return
	}
	c.log.Debug("terminal foreground given back", "pgrp", me)
}

// terminalSignals are the signals a terminal sends to its whole foreground
// process group: Ctrl-C, Ctrl-\ and a resize. (Ctrl-Z's SIGTSTP is not
// caught at all.)
var terminalSignals = map[os.Signal]bool{syscall.SIGINT: true, syscall.SIGQUIT: true, syscall.SIGWINCH: true}

// TerminalDelivered reports whether the app has already received sig from
// the terminal: sig is one a terminal sends to its whole foreground group
// (SIGINT, SIGQUIT, SIGWINCH), the app shares the wrapper's process group
// (no Setpgid), and that group is the foreground of the wrapper's
// controlling terminal. Forwarding sig would then deliver it twice.
//
// Go does not say who sent a signal, so a kill(2) of the wrapper in that
// state is taken for the terminal's and does not reach the app either. With
// Setpgid there is no such case: the app's group, not the wrapper's, owns
// the terminal, so everything the wrapper receives is forwarded.
func (c *Child) TerminalDelivered(sig os.Signal) bool {
	if c.opts.Setpgid || !terminalSignals[sig] {
		return false
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		return false // no controlling terminal
	}
	defer tty.Close()
	fg, err := foreground(tty.Fd())
	if err != nil || fg != syscall.Getpgrp() {
		return false
	}
	// A terminal in raw mode (an editor, a REPL) sends no INT or QUIT:
	// those came from kill(2). A resize is signalled in any mode.
	return sig == syscall.SIGWINCH || keySignals(tty.Fd())
}

// LeadsTerminal reports whether the calling process leads the session of the
// terminal f, its controlling terminal, and its group is the foreground:
// the case of `docker run -t`, kubectl run -t, ssh or script(1), with no
// job-control shell above it.
func LeadsTerminal(f *os.File) bool {
	sid, err := getsid()
	return err == nil && sid == os.Getpid() && takeTerminal(f)
}
