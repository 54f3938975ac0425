package envoyfake

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// recorder keeps requests in arrival order and wakes waiters on each answer.
type recorder struct {
	mu      sync.Mutex
	reqs    []Request
	done    []bool
	changed chan struct{} // closed and replaced whenever a request completes
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{})}
}

// begin reserves the request's slot at arrival, so the list keeps arrival
// order even when answers complete out of order.
func (r *recorder) begin(at time.Time, method, path, rawQuery string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, Request{At: at, Method: method, Path: path, RawQuery: rawQuery})
	r.done = append(r.done, false)
	return len(r.reqs) - 1
}

// finish records the status; it runs after the side effect and before the
// answer is written, so a waiter never sees a request whose effect is pending.
func (r *recorder) finish(i, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs[i].Status = status
	r.done[i] = true
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) list() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Request, 0, len(r.reqs))
	for i, q := range r.reqs {
		if r.done[i] {
			out = append(out, q)
		}
	}
	return out
}

func (r *recorder) wait(ctx context.Context, pred func(Request) bool) (Request, error) {
	for {
		r.mu.Lock()
		for i, q := range r.reqs {
			if r.done[i] && pred(q) {
				r.mu.Unlock()
				return q, nil
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Request{}, fmt.Errorf("cannot find a matching request: %w", ctx.Err())
		}
	}
}
