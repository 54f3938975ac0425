package kubeletsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of the sim's own waits.
const (
	// killWait bounds the wait for SIGKILLed processes to be reaped.
	killWait = 10 * time.Second
	// outputWait bounds the wait for a container's output to be read to
	// its end once the container is gone.
	outputWait = 2 * time.Second
	// hookOutputMax is how much of an exec hook's output is kept.
	hookOutputMax = 64 << 10
)

// Phase is the pod's phase.
type Phase string

// The phases a pod goes through here.
const (
	PhaseRunning   Phase = "Running"
	PhaseSucceeded Phase = "Succeeded"
	PhaseFailed    Phase = "Failed"
)

// ContainerStatus is a container's state now.
type ContainerStatus struct {
	Pid      int // of the current or last process
	Running  bool
	Exited   bool // exited at least once
	ExitCode int  // of the last exit; 128+n when signal n killed it
	Restarts int
	Killed   bool // got SIGKILL from the sim
}

// Pod is a running pod. Its methods are safe for concurrent use.
type Pod struct {
	spec  Spec
	start time.Time
	logf  func(string, ...any)

	ctx    context.Context // ends when the pod is closed
	cancel context.CancelFunc

	mu          sync.Mutex
	events      []Event
	changed     chan struct{} // closed and replaced on each event
	ctrs        []*ctr        // sidecars first, then regular containers
	inits       []*ctr        // init containers that ran
	terminating bool          // no more restarts
	termStarted bool          // a termination (Terminate or a Job's end) began
	quiet       bool
	hooks       int // hooks running
	closed      bool

	termOnce sync.Once
	termDone chan struct{}
	done     chan struct{}
	output   sync.WaitGroup // output readers
	bg       sync.WaitGroup // every other goroutine
}

// ctr is one container; its mutable fields are guarded by Pod.mu.
type ctr struct {
	Container
	sidecar bool
	index   int // in Spec.Sidecars or Spec.Containers; -1 for an init container

	pid      int
	running  bool          // until its EventExited
	reaped   bool          // the process is gone: no more signals to pid
	exit     chan struct{} // closed when the current process exits
	status   ContainerStatus
	finished bool // exited and will not be restarted
}

// Start starts the pod: the sidecars in order, each once the previous one
// passed its startup probe, then the regular containers. On an error,
// whatever started is killed.
func Start(spec Spec) (*Pod, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = RestartNever
	}
	if spec.GracePeriod == 0 {
		spec.GracePeriod = DefaultGracePeriod
	}
	if spec.StartTimeout == 0 {
		spec.StartTimeout = DefaultStartTimeout
	}
	if spec.ProbePeriod == 0 {
		spec.ProbePeriod = DefaultProbePeriod
	}
	p := &Pod{
		spec:     spec,
		start:    time.Now(),
		logf:     spec.Logf,
		changed:  make(chan struct{}),
		termDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, c := range spec.InitContainers {
		if err := p.runInit(c); err != nil {
			p.Close()
			return nil, err
		}
	}
	for i, c := range spec.Sidecars {
		p.ctrs = append(p.ctrs, &ctr{Container: c, sidecar: true, index: i})
	}
	for i, c := range spec.Containers {
		p.ctrs = append(p.ctrs, &ctr{Container: c, index: i})
	}
	for _, c := range p.ctrs {
		p.mu.Lock()
		err := p.startLocked(c)
		p.mu.Unlock()
		if err == nil && c.sidecar && c.StartupProbe != nil {
			err = p.probe(c)
		}
		if err != nil {
			p.Close()
			return nil, err
		}
	}
	p.bg.Go(p.watchDone)
	return p, nil
}

// runInit runs an init container to completion.
func (p *Pod) runInit(spec Container) error {
	c := &ctr{Container: spec, index: -1}
	p.mu.Lock()
	err := p.startLocked(c)
	exit := c.exit
	p.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-exit:
	case <-time.After(p.spec.StartTimeout):
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		<-exit
		return fmt.Errorf("init container %q did not complete within %v", c.Name, p.spec.StartTimeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inits = append(p.inits, c)
	if code := c.status.ExitCode; code != 0 {
		return fmt.Errorf("init container %q exited %d", c.Name, code)
	}
	return nil
}

// startLocked starts c's process; p.mu is held.
func (p *Pod) startLocked(c *ctr) error {
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// One pipe for stdout and stderr, so lines keep the order they were
	// written in (kubectl logs interleaves them too). A file, not a
	// writer: exec then starts no copying goroutine, so Wait returns when
	// the process exits even if a descendant holds the pipe.
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cannot start container %q: %w", c.Name, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("cannot start container %q: %w", c.Name, err)
	}
	c.pid, c.running, c.reaped, c.exit = cmd.Process.Pid, true, false, make(chan struct{})
	c.status.Pid = c.pid
	detail := "pid " + strconv.Itoa(c.pid)
	if c.status.Restarts > 0 {
		detail = fmt.Sprintf("restart %d, pid %d", c.status.Restarts, c.pid)
	}
	p.emitLocked(Event{Kind: EventStarted, Container: c.Name, Detail: detail})
	read := make(chan struct{})
	p.output.Go(func() { defer close(read); p.readOutput(c.Name, r) })
	exit, pid := c.exit, c.pid
	p.bg.Go(func() {
		_ = cmd.Wait() // the status is in ProcessState
		p.mu.Lock()
		c.reaped = true
		p.mu.Unlock()
		// What is left in the container dies with its main process.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		// The container's last lines come before its exit.
		select {
		case <-read:
		case <-time.After(outputWait):
		}
		p.exited(c, exit, exitCode(cmd.ProcessState))
	})
	return nil
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func (p *Pod) readOutput(name string, r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.emit(Event{Kind: EventOutput, Container: name, Stream: StreamLog, Detail: sc.Text()})
	}
}

// exited records the end of c's process, tears down what is left of the
// container and restarts it if the policy says so.
func (p *Pod) exited(c *ctr, exit chan struct{}, code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.running = false
	c.status.Running, c.status.Exited, c.status.ExitCode = false, true, code
	close(exit)
	p.emitLocked(Event{Kind: EventExited, Container: c.Name, Code: code})
	if c.index < 0 { // an init container: runInit takes it from here
		c.finished = true
		return
	}
	if p.terminating || !p.restartsLocked(c, code) {
		c.finished = true
		p.afterExitLocked()
		return
	}
	c.status.Restarts++
	if p.spec.RestartDelay == 0 {
		if err := p.startLocked(c); err != nil {
			p.emitLocked(Event{Kind: EventExited, Container: c.Name, Code: -1, Detail: err.Error()})
			c.finished = true
			p.afterExitLocked()
		}
		return
	}
	p.bg.Go(func() {
		select {
		case <-time.After(p.spec.RestartDelay):
		case <-p.ctx.Done():
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.terminating {
			c.finished = true
			p.afterExitLocked()
			return
		}
		if err := p.startLocked(c); err != nil {
			p.emitLocked(Event{Kind: EventExited, Container: c.Name, Code: -1, Detail: err.Error()})
			c.finished = true
			p.afterExitLocked()
		}
	})
}

func (p *Pod) restartsLocked(c *ctr, code int) bool {
	if c.sidecar {
		return !p.regularDoneLocked()
	}
	switch p.spec.RestartPolicy {
	case RestartAlways:
		return true
	case RestartOnFailure:
		return code != 0
	}
	return false
}

// regularDoneLocked reports whether every regular container has finished
// for good.
func (p *Pod) regularDoneLocked() bool {
	for _, c := range p.ctrs {
		if !c.sidecar && !c.finished {
			return false
		}
	}
	return true
}

// afterExitLocked stops the native sidecars once the regular containers are
// done by themselves: the pod is complete (a Job), and kubelet stops the
// sidecars as in a termination, with the pod's grace period.
func (p *Pod) afterExitLocked() {
	if p.terminating || !p.regularDoneLocked() {
		return
	}
	for _, c := range p.ctrs {
		if c.sidecar && c.running {
			p.terminateLocked(p.spec.GracePeriod, "regular containers completed")
			return
		}
	}
}

// Terminate deletes the pod with the given grace period, as kubelet
// would, and returns once every container has exited and every hook has
// returned: at most the grace period plus the time to reap what was
// killed. If the pod is already terminating (its sidecars being stopped
// after a Job), it waits for that instead.
func (p *Pod) Terminate(grace time.Duration) {
	p.mu.Lock()
	p.terminateLocked(grace, "deleted")
	p.mu.Unlock()
	<-p.termDone
	select {
	case <-p.done:
	case <-time.After(killWait):
	}
}

func (p *Pod) terminateLocked(grace time.Duration, why string) {
	p.termOnce.Do(func() {
		p.terminating, p.termStarted = true, true
		if grace < 0 {
			grace = 0
		}
		p.emitLocked(Event{Kind: EventTerminate, Detail: fmt.Sprintf("%s, grace period %v", why, grace)})
		var running []*ctr
		for _, c := range p.ctrs {
			if c.running {
				running = append(running, c)
			}
		}
		p.bg.Go(func() { p.terminate(grace, running) })
	})
}

// terminate plays the termination of the containers that were running
// when it began.
func (p *Pod) terminate(grace time.Duration, running []*ctr) {
	defer close(p.termDone)
	ctx, cancel := context.WithTimeout(p.ctx, grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range running {
		wg.Go(func() { p.stop(ctx, c) })
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
	}
	// Past the grace period: SIGKILL what is still alive. Before it,
	// nothing is left and this does nothing.
	why := "grace period over"
	if p.ctx.Err() != nil {
		why = "pod closed"
	}
	p.killRunning(why)
	<-stopped
	p.waitExits(running)
}

// stop runs c's preStop hook, waits for its turn if it is a sidecar, sends
// SIGTERM and waits for the exit, all within ctx (the grace period).
func (p *Pod) stop(ctx context.Context, c *ctr) {
	if c.PreStop != nil {
		p.runHook(ctx, c)
	}
	if c.sidecar {
		p.waitTurn(ctx, c)
	}
	p.mu.Lock()
	exit := c.exit
	if c.running && !c.reaped && ctx.Err() == nil {
		p.emitLocked(Event{Kind: EventTerm, Container: c.Name})
		_ = syscall.Kill(c.pid, syscall.SIGTERM)
	}
	p.mu.Unlock()
	select {
	case <-exit:
	case <-ctx.Done():
	}
}

// waitTurn blocks a sidecar until every regular container and every
// sidecar after it has exited.
func (p *Pod) waitTurn(ctx context.Context, c *ctr) {
	for {
		p.mu.Lock()
		turn := true
		for _, o := range p.ctrs {
			if o.running && (!o.sidecar || o.index > c.index) {
				turn = false
			}
		}
		ch := p.changed
		p.mu.Unlock()
		if turn {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// killRunning SIGKILLs every running container's process group.
func (p *Pod) killRunning(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.ctrs {
		if c.running && !c.reaped {
			c.status.Killed = true
			p.emitLocked(Event{Kind: EventKill, Container: c.Name, Detail: why})
			_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		}
	}
}

// waitExits waits, bounded, until none of cs runs.
func (p *Pod) waitExits(cs []*ctr) {
	deadline := time.After(killWait)
	for _, c := range cs {
		p.mu.Lock()
		exit := c.exit
		p.mu.Unlock()
		select {
		case <-exit:
		case <-deadline:
			return
		}
	}
}

// runHook runs c's preStop hook within ctx and records its start and end.
func (p *Pod) runHook(ctx context.Context, c *ctr) {
	h := c.PreStop
	p.mu.Lock()
	p.hooks++
	pid := c.pid
	var what string
	switch {
	case h.Exec != nil:
		what = "exec " + strings.Join(h.Exec, " ")
	case h.HTTPGet != nil:
		what = "httpGet " + h.HTTPGet.url()
	default:
		what = "sleep " + h.Sleep.String()
	}
	p.emitLocked(Event{Kind: EventHookStart, Container: c.Name, Detail: what})
	p.mu.Unlock()

	var end Event
	switch {
	case h.Exec != nil:
		end = p.execHook(ctx, c, pid)
	case h.HTTPGet != nil:
		end = httpHook(ctx, h.HTTPGet)
	default:
		end = sleepHook(ctx, h.Sleep)
	}
	end.Kind, end.Container = EventHookEnd, c.Name

	p.mu.Lock()
	p.hooks--
	p.emitLocked(end)
	p.mu.Unlock()
}

func sleepHook(ctx context.Context, d time.Duration) Event {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return Event{Code: -1, Detail: "slept " + d.String()}
	case <-ctx.Done():
		return Event{Code: -1, Failed: true, Detail: "grace period over before the sleep ended"}
	}
}

func httpHook(ctx context.Context, g *HTTPGet) Event {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url(), nil)
	if err != nil {
		return Event{Code: -1, Failed: true, Detail: err.Error()}
	}
	for _, h := range g.Headers {
		req.Header.Add(h.Name, h.Value)
	}
	// The grace period (ctx) is the only timeout, as kubelet's.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return Event{Code: -1, Failed: true, Detail: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return Event{Code: resp.StatusCode, Detail: fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))}
}

// execHook runs the command in c's process group, so it dies with the
// container, as a process exec'd into a container with its own PID
// namespace does.
func (p *Pod) execHook(ctx context.Context, c *ctr, pgid int) Event {
	cmd := exec.CommandContext(ctx, c.PreStop.Exec[0], c.PreStop.Exec[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	out := &lineEmitter{p: p, name: c.Name}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out.flush()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return Event{Code: 0, Detail: "exit 0"}
	case errors.As(err, &ee):
		code := exitCode(ee.ProcessState)
		detail := fmt.Sprintf("exit %d", code)
		if ctx.Err() != nil {
			detail += ", grace period over"
		}
		return Event{Code: code, Failed: true, Detail: detail}
	default:
		return Event{Code: -1, Failed: true, Detail: err.Error()}
	}
}

// lineEmitter turns an exec hook's output into EventOutput lines.
type lineEmitter struct {
	p    *Pod
	name string
	mu   sync.Mutex
	buf  []byte
	n    int
}

func (w *lineEmitter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n += len(b); w.n > hookOutputMax {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		w.p.emit(Event{Kind: EventOutput, Container: w.name, Stream: StreamPreStop, Detail: string(w.buf[:i])})
		w.buf = w.buf[i+1:]
	}
}

func (w *lineEmitter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.p.emit(Event{Kind: EventOutput, Container: w.name, Stream: StreamPreStop, Detail: string(w.buf)})
		w.buf = nil
	}
}

// probe polls a sidecar's startup probe until it answers 2xx or 3xx.
func (p *Pod) probe(c *ctr) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.spec.StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(p.spec.ProbePeriod)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.StartupProbe.url(), nil)
		if err != nil {
			return fmt.Errorf("container %q: cannot probe: %w", c.Name, err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 400 {
				p.emit(Event{Kind: EventProbed, Container: c.Name, Code: resp.StatusCode, Detail: strconv.Itoa(resp.StatusCode)})
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("container %q: startup probe did not pass within %v", c.Name, p.spec.StartTimeout)
		}
	}
}

// watchDone closes done once every container finished for good and every
// hook returned.
func (p *Pod) watchDone() {
	for {
		p.mu.Lock()
		finished := p.hooks == 0
		for _, c := range p.ctrs {
			if !c.finished {
				finished = false
			}
		}
		ch := p.changed
		p.mu.Unlock()
		if finished {
			break
		}
		<-ch
	}
	p.mu.Lock()
	term := p.termStarted
	p.mu.Unlock()
	if term {
		<-p.termDone
	}
	// The last lines of output may still be in the pipes.
	readers := make(chan struct{})
	go func() { p.output.Wait(); close(readers) }()
	select {
	case <-readers:
	case <-time.After(outputWait):
	}
	p.mu.Lock()
	p.emitLocked(Event{Kind: EventPodDone, Detail: string(p.phaseLocked(true))})
	p.mu.Unlock()
	close(p.done)
}

// Done is closed once every container has exited for good and every hook
// has returned. A pod whose regular container never exits (a proxy nobody
// stopped) is never done.
func (p *Pod) Done() <-chan struct{} { return p.done }

// Phase is Running until the pod is done, then Succeeded if every regular
// container's last exit code was 0, else Failed. Native sidecars' codes do
// not count.
func (p *Pod) Phase() Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return p.phaseLocked(true)
	default:
		return PhaseRunning
	}
}

func (p *Pod) phaseLocked(done bool) Phase {
	if !done {
		return PhaseRunning
	}
	for _, c := range p.ctrs {
		if !c.sidecar && c.status.ExitCode != 0 {
			return PhaseFailed
		}
	}
	return PhaseSucceeded
}

// Status is the state of the named container (init containers included);
// ok is false if there is no such container.
func (p *Pod) Status(name string) (st ContainerStatus, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range append(append([]*ctr(nil), p.inits...), p.ctrs...) {
		if c.Name == name {
			st = c.status
			st.Running = c.running
			return st, true
		}
	}
	return st, false
}

// Start is when the pod started: the origin of Timeline.
func (p *Pod) Start() time.Time { return p.start }

// Close SIGKILLs whatever still runs, without hooks, and waits (bounded)
// for it; Logf is not called after it returns. It is idempotent and meant
// for t.Cleanup.
func (p *Pod) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed, p.terminating = true, true
	p.cancel()
	var running []*ctr
	for _, c := range p.ctrs {
		if c.running {
			running = append(running, c)
		}
	}
	p.mu.Unlock()
	p.killRunning("pod closed")
	p.waitExits(running)
	bg := make(chan struct{})
	go func() { p.bg.Wait(); p.output.Wait(); close(bg) }()
	select {
	case <-bg:
	case <-time.After(killWait):
	}
	p.mu.Lock()
	p.quiet = true
	p.mu.Unlock()
}
