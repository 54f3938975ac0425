package wrapper

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// NumSignals is the highest signal number on Linux; signals run 1..64.
const NumSignals = 64

// Action is what the wrapper does with a signal while the app runs.
type Action int

// The actions of SignalTable and Policy.Action.
const (
	// Forward: caught, and sent on to the app (to its group with Setpgid).
	Forward Action = iota + 1
	// Own: the reaper's or the Go runtime's; never reaches the app.
	Own
	// Dropped: caught and dropped.
	Dropped
	// JobControl: left at its default action, so it stops the wrapper.
	JobControl
	// Reserved: reserved for the C library, and not catchable by a Go
	// program; the wrapper ignores it, the app gets its default.
	Reserved
	// Uncatchable: SIGKILL and SIGSTOP act on the wrapper itself.
	Uncatchable
	// IgnoredAtStart: ignored when the wrapper started, so ignored by the
	// wrapper and the app alike, and never forwarded. Only Policy.Action
	// reports it; SignalTable gives the action otherwise.
	IgnoredAtStart
)

var actionNames = map[Action]string{
	Forward:        "forward",
	Own:            "own",
	Dropped:        "dropped",
	JobControl:     "job control",
	Reserved:       "reserved",
	Uncatchable:    "uncatchable",
	IgnoredAtStart: "ignored at start",
}

func (a Action) String() string {
	if s, ok := actionNames[a]; ok {
		return s
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Default is the kernel's default action for a signal, as signal(7) lists it.
type Default int

// The default actions.
const (
	Term Default = iota + 1 // ends the process
	Core                    // ends the process with a core dump
	Ign                     // nothing
	Stop                    // stops the process
	Cont                    // continues a stopped process
)

var defaultNames = map[Default]string{Term: "term", Core: "core", Ign: "ignore", Stop: "stop", Cont: "continue"}

func (d Default) String() string {
	if s, ok := defaultNames[d]; ok {
		return s
	}
	return fmt.Sprintf("Default(%d)", int(d))
}

// Ends reports whether the default action ends the process.
func (d Default) Ends() bool { return d == Term || d == Core }

// SignalInfo documents what the wrapper does with one signal, and why.
type SignalInfo struct {
	Signal  syscall.Signal
	Name    string // "SIGTERM"; real-time ones are "signal 40"
	Default Default
	Action  Action // unless the signal was ignored at start
	Why     string // the reason, when Action is not Forward
	// Tini and DumbInit say how tini (v0.19) and dumb-init (v1.2) treat the
	// signal, when that differs from the wrapper.
	Tini, DumbInit string
}

// rule is one row of the policy's source: the signals it covers and what is
// said about them. Lookup fills in Name and Default.
type rule struct {
	sigs           []syscall.Signal
	action         Action
	why            string
	tini, dumbInit string
}

var (
	// synchronous signals come from the kernel when the wrapper itself
	// faults; the Go runtime crashes on those before any Notify sees them.
	// Only ones sent with kill(2) reach the channel.
	synchronous = []syscall.Signal{syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT, syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGSYS}
	jobControl  = []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}
	// reserved are the real-time signals the Go runtime leaves to the C
	// library (glibc's SIGCANCEL 32, musl's SIGSYNCCALL 34): it installs no
	// handler, os/signal cannot catch them, and their default would end the
	// wrapper. 33 is the runtime's own (see rules).
	reserved = []syscall.Signal{32, 34}
)

// rules are the exceptions to "forward"; every other signal 1..64 is
// forwarded. Each says why, and how tini and dumb-init differ.
var rules = []rule{
	{sigs: []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP}, action: Uncatchable,
		why: "cannot be caught: KILL ends the wrapper (the app is orphaned), STOP stops it"},
	{sigs: []syscall.Signal{syscall.SIGCHLD}, action: Own,
		why: "the reaper's: it wakes the one goroutine that waits for children"},
	{sigs: []syscall.Signal{syscall.SIGURG}, action: Own,
		why:  "the Go runtime's preemption signal, sent to the wrapper all the time; forwarding it has killed apps under other Go wrappers",
		tini: "forwarded", dumbInit: "forwarded"},
	{sigs: []syscall.Signal{syscall.SIGPROF}, action: Own,
		why:  "the Go runtime's profiler signal; the runtime swallows it",
		tini: "forwarded", dumbInit: "forwarded"},
	{sigs: []syscall.Signal{33}, action: Own,
		why:  "the Go runtime's own (it makes setuid and similar calls on every thread with it); it swallows it",
		tini: "not forwarded: glibc reserves it", dumbInit: "not forwarded: glibc reserves it"},
	{sigs: []syscall.Signal{syscall.SIGPIPE}, action: Dropped,
		why:  "the Go runtime reports the wrapper's own writes to a closed pipe (stderr, a socket) as SIGPIPE, which must neither end the wrapper nor reach the app; a kill(2) cannot be told apart",
		tini: "forwarded", dumbInit: "forwarded"},
	{sigs: jobControl[:1], action: JobControl, why: jobControlWhy,
		tini: "forwarded: the app stops, tini runs on", dumbInit: "forwarded (as STOP to a group), then dumb-init stops itself"},
	{sigs: jobControl[1:], action: JobControl, why: jobControlWhy,
		tini: "ignored", dumbInit: "forwarded (as STOP to a group), then dumb-init stops itself"},
	{sigs: reserved[:1], action: Reserved, why: reservedWhy,
		tini: "not forwarded: glibc reserves it", dumbInit: "not forwarded: glibc reserves it"},
	{sigs: reserved[1:], action: Reserved, why: reservedWhy,
		tini: "forwarded", dumbInit: "forwarded"},
}

const (
	jobControlWhy = "not caught, so it stops the wrapper; Ctrl-Z stops the wrapper and the app together when they share a process group"
	reservedWhy   = "reserved for the C library; Go cannot catch it, so the wrapper ignores it (SIG_IGN) and the app starts with the default"
)

// fatalToGo are the forwarded signals the Go runtime dies of when one is
// sent with kill(2) and not notified (_SigKill, _SigThrow and _SigPanic in
// runtime/sigtab_linux_generic.go); it drops the others.
var fatalToGo = map[syscall.Signal]bool{
	syscall.SIGHUP: true, syscall.SIGINT: true, syscall.SIGTERM: true,
	syscall.SIGQUIT: true, syscall.SIGILL: true, syscall.SIGTRAP: true, syscall.SIGABRT: true,
	syscall.SIGBUS: true, syscall.SIGFPE: true, syscall.SIGSEGV: true, 16: true, syscall.SIGSYS: true,
}

// Notes on the forwarded signals, for SignalTable.
var forwardNotes = map[syscall.Signal]rule{
	syscall.SIGINT:   {why: "not forwarded when the terminal already delivered it (see TerminalDelivered)"},
	syscall.SIGQUIT:  {why: "not forwarded when the terminal already delivered it (see TerminalDelivered)"},
	syscall.SIGWINCH: {why: "not forwarded when the terminal already delivered it (see TerminalDelivered)"},
}

func init() {
	for _, s := range synchronous {
		forwardNotes[s] = rule{
			why:  "when sent with kill(2); a real fault in the wrapper still crashes it",
			tini: "not caught: the default action ends tini", dumbInit: "forwarded",
		}
	}
}

// defaults are the kernel's default actions that are not Term (signal(7));
// real-time signals end the process too.
var defaults = map[syscall.Signal]Default{
	syscall.SIGQUIT: Core, syscall.SIGILL: Core, syscall.SIGTRAP: Core, syscall.SIGABRT: Core,
	syscall.SIGBUS: Core, syscall.SIGFPE: Core, syscall.SIGSEGV: Core, syscall.SIGXCPU: Core,
	syscall.SIGXFSZ: Core, syscall.SIGSYS: Core,
	syscall.SIGCHLD: Ign, syscall.SIGURG: Ign, syscall.SIGWINCH: Ign,
	syscall.SIGCONT: Cont,
	syscall.SIGSTOP: Stop, syscall.SIGTSTP: Stop, syscall.SIGTTIN: Stop, syscall.SIGTTOU: Stop,
}

// Lookup returns what the wrapper does with s, a signal 1..64, unless s was
// ignored at start (see Policy.Action).
func Lookup(s syscall.Signal) SignalInfo {
	info := SignalInfo{Signal: s, Name: signalName(s), Default: Term, Action: Forward}
	if d, ok := defaults[s]; ok {
		info.Default = d
	}
	for _, r := range rules {
		for _, rs := range r.sigs {
			if rs == s {
				info.Action, info.Why, info.Tini, info.DumbInit = r.action, r.why, r.tini, r.dumbInit
				return info
			}
		}
	}
	if n, ok := forwardNotes[s]; ok {
		info.Why, info.Tini, info.DumbInit = n.why, n.tini, n.dumbInit
	}
	return info
}

// SignalTable returns Lookup of every signal 1..64.
func SignalTable() []SignalInfo {
	t := make([]SignalInfo, 0, NumSignals)
	for s := syscall.Signal(1); s <= NumSignals; s++ {
		t = append(t, Lookup(s))
	}
	return t
}

// signalName is "SIGTERM" for a classic signal, "signal 40" for a real-time
// one (glibc and musl number SIGRTMIN differently).
func signalName(s syscall.Signal) string {
	if s >= 32 {
		return fmt.Sprintf("signal %d", int(s))
	}
	return "SIG" + abbrev[s]
}

var abbrev = map[syscall.Signal]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE",
	9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
	16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU",
	23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO",
	30: "PWR", 31: "SYS",
}

// Policy is the signal policy of the wrapper process, fixed by Catch.
type Policy struct {
	ignored   map[syscall.Signal]bool // ignored at start
	forwarded []os.Signal
}

var (
	catchOnce sync.Once
	policy    *Policy
	// childDefault are the signals the wrapper ignores that the app must
	// get at their default: Start resets them around the fork.
	childDefaultMu sync.Mutex
	childDefault   []syscall.Signal
	// catchDone is closed once Catch has notified every signal; nil
	// before Catch. Guarded by childDefaultMu.
	catchDone chan struct{}
)

// Catch sets the process's signal dispositions and returns its policy. The
// first call decides; later ones return the same Policy and ignore ch. Call
// it first thing, before anything that can take time and before any other
// signal.Notify in the process:
//   - a signal ignored at start stays ignored (os/signal's Notify would take
//     that over, and the app would inherit the default), and is not
//     forwarded;
//   - every other signal whose Action is Forward is relayed to ch, which
//     should be buffered (os/signal drops what a full channel cannot take);
//     those the Go runtime would die of from the moment Catch returns, the
//     others once Wait returns;
//   - SIGPIPE is caught and dropped, so the wrapper's own writes to a closed
//     pipe end neither it nor the app;
//   - the reserved signals are ignored, so they cannot end the wrapper; Start
//     gives the app their default again.
//
// The Go runtime takes every other signal over before any of our code runs,
// so only SIGHUP, SIGINT, the job-control signals, SIGCONT and the reserved
// ones can be seen ignored at start; for the rest an inherited SIG_IGN is
// lost, as it is under dumb-init.
func Catch(ch chan<- os.Signal) *Policy {
	catchOnce.Do(func() { policy = catch(ch) })
	return policy
}

func catch(ch chan<- os.Signal) *Policy {
	childDefaultMu.Lock()
	defer childDefaultMu.Unlock()
	p := &Policy{ignored: ignoredSignals()}
	var now, later []os.Signal
	for s := syscall.Signal(1); s <= NumSignals; s++ {
		if p.ignored[s] || Lookup(s).Action != Forward {
			continue
		}
		p.forwarded = append(p.forwarded, s)
		if fatalToGo[s] {
			now = append(now, s)
		} else {
			later = append(later, s)
		}
	}
	// Each signal costs a round trip to the runtime's signal thread: the
	// ones the runtime would die of now, the rest (which it drops until
	// then) while the caller reads its configuration. Start waits for them.
	signal.Notify(ch, now...)
	catchDone = make(chan struct{})
	go func() {
		signal.Notify(ch, later...)
		close(catchDone)
	}()

	// Not to ch: the caller never needs to see it.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	go func() {
		for range pipe {
		}
	}()

	for _, s := range reserved {
		if p.ignored[s] {
			continue
		}
		if err := setDisposition(s, sigIGN); err == nil {
			childDefault = append(childDefault, s)
		}
	}
	return p
}

// ignoredSignals returns the signals whose disposition is SIG_IGN now.
func ignoredSignals() map[syscall.Signal]bool {
	ign := make(map[syscall.Signal]bool)
	for s := syscall.Signal(1); s <= NumSignals; s++ {
		if h, err := disposition(s); err == nil && h == sigIGN {
			ign[s] = true
		}
	}
	return ign
}

// Action returns what the wrapper does with s while the app runs.
func (p *Policy) Action(s os.Signal) Action {
	ss, ok := s.(syscall.Signal)
	if !ok || ss < 1 || ss > NumSignals {
		return Dropped
	}
	if p.ignored[ss] {
		return IgnoredAtStart
	}
	return Lookup(ss).Action
}

// Wait returns once every signal Catch notifies reaches its channel: Catch
// notifies those the Go runtime would die of before it returns, and the
// rest, which the runtime drops until then, in the background. Start waits
// for them too.
func (p *Policy) Wait() {
	childDefaultMu.Lock()
	done := catchDone
	childDefaultMu.Unlock()
	<-done
}

// Forwarded returns the signals Catch relays to its channel.
func (p *Policy) Forwarded() []os.Signal {
	return append([]os.Signal(nil), p.forwarded...)
}

// IgnoredAtStart returns the signals that were ignored when Catch ran, as
// far as the Go runtime lets them be seen (see Catch).
func (p *Policy) IgnoredAtStart() []syscall.Signal {
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= NumSignals; s++ {
		if p.ignored[s] {
			out = append(out, s)
		}
	}
	return out
}

// startWithDefaults runs cmd.Start with the signals the wrapper ignores only
// for itself (childDefault) at their default, so the app inherits the
// default: exec keeps SIG_IGN, and Go's fork resets only the handlers the
// runtime installed. For the fork's duration such a signal can end the
// wrapper; it is ignored again as soon as the app has exec'd.
func startWithDefaults(cmd *exec.Cmd) error {
	childDefaultMu.Lock()
	defer childDefaultMu.Unlock()
	if catchDone != nil {
		<-catchDone // every signal is forwarded while the app lives
	}
	for _, s := range childDefault {
		_ = setDisposition(s, sigDFL)
	}
	err := cmd.Start()
	for _, s := range childDefault {
		_ = setDisposition(s, sigIGN)
	}
	return err
}
