package kubeletsim

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Kind is what an Event records.
type Kind string

// The kinds of events, in the order a container usually sees them.
const (
	// EventStarted: a container's process started (Detail: "pid N", or
	// "restart N, pid M").
	EventStarted Kind = "started"
	// EventProbed: a sidecar's startup probe passed (Code: the status).
	EventProbed Kind = "startup-probe-ok"
	// EventOutput: one line a container (Stream StreamLog) or its exec
	// hook (StreamPreStop) wrote. A container's lines all come before its
	// EventExited.
	EventOutput Kind = "output"
	// EventTerminate: the pod's termination began (Container empty,
	// Detail: why and the grace period). Every later deadline counts from
	// here.
	EventTerminate Kind = "terminate"
	// EventHookStart: a preStop hook started (Detail: the hook).
	EventHookStart Kind = "prestop-start"
	// EventHookEnd: a preStop hook returned. Code is the HTTP status or the
	// exec exit code (-1 when there was none); Failed is set for an exec
	// hook that exited non-zero, an httpGet that could not be made, and a
	// sleep cut by the grace period; Detail says what happened.
	EventHookEnd Kind = "prestop-end"
	// EventTerm: SIGTERM sent to the container's process.
	EventTerm Kind = "sigterm"
	// EventKill: SIGKILL sent to the container's processes.
	EventKill Kind = "sigkill"
	// EventExited: a container's process exited. Code is its exit code,
	// 128+n when signal n killed it.
	EventExited Kind = "exited"
	// EventPodDone: every container exited for good (Detail: the phase).
	EventPodDone Kind = "pod-done"
)

// The streams of EventOutput. A container's stdout and stderr share one
// pipe, so its lines keep the order they were written in, as in kubectl
// logs; lines of different containers are ordered as they were read.
const (
	StreamLog     = "log"
	StreamPreStop = "prestop"
)

// Event is one step of the pod's life.
type Event struct {
	At        time.Time
	Kind      Kind
	Container string // empty for pod-wide events
	Stream    string // EventOutput: StreamLog or StreamPreStop
	Detail    string
	Code      int
	Failed    bool // EventHookEnd: the hook failed
}

// Is matches events of kind k for container name (any container when
// name is empty).
func Is(k Kind, name string) func(Event) bool {
	return func(e Event) bool { return e.Kind == k && (name == "" || e.Container == name) }
}

// Output matches an output line of container name that contains s.
func Output(name, s string) func(Event) bool {
	return func(e Event) bool {
		return e.Kind == EventOutput && e.Container == name && strings.Contains(e.Detail, s)
	}
}

// format is one line of the timeline, with the time relative to t0.
func (e Event) format(t0 time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+8.3fs  %-16s %-15s", e.At.Sub(t0).Seconds(), e.Container, e.Kind)
	switch e.Kind {
	case EventOutput:
		if e.Stream == StreamPreStop {
			b.WriteString(" [preStop]")
		}
		fmt.Fprintf(&b, " %s", e.Detail)
	case EventExited:
		fmt.Fprintf(&b, " code %d", e.Code)
	case EventHookEnd, EventProbed:
		fmt.Fprintf(&b, " %s", e.Detail)
		if e.Failed {
			b.WriteString(" (failed)")
		}
	default:
		if e.Detail != "" {
			fmt.Fprintf(&b, " %s", e.Detail)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// Events returns every event so far, in the order they were recorded.
func (p *Pod) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// First returns the first event matching pred, and its index in Events.
func (p *Pod) First(pred func(Event) bool) (Event, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.events {
		if pred(e) {
			return e, i, true
		}
	}
	return Event{}, -1, false
}

// WaitEvent blocks until an event (past or future) matches pred, or ctx
// ends. It wakes on each new event; it does not poll.
func (p *Pod) WaitEvent(ctx context.Context, pred func(Event) bool) (Event, error) {
	for {
		p.mu.Lock()
		for _, e := range p.events {
			if pred(e) {
				p.mu.Unlock()
				return e, nil
			}
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("cannot find a matching event: %w", ctx.Err())
		}
	}
}

// Timeline is every event so far, one per line, timed from the pod's start:
// for test failure messages and documentation.
func (p *Pod) Timeline() string {
	var b strings.Builder
	for _, e := range p.Events() {
		b.WriteString(e.format(p.start))
		b.WriteByte('\n')
	}
	return b.String()
}

// emitLocked records an event and wakes the waiters; p.mu is held.
func (p *Pod) emitLocked(e Event) {
	e.At = time.Now()
	p.events = append(p.events, e)
	close(p.changed)
	p.changed = make(chan struct{})
	if p.logf != nil && !p.quiet {
		p.logf("kubeletsim: %s", e.format(p.start))
	}
}

func (p *Pod) emit(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.emitLocked(e)
}
