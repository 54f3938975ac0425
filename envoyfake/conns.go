package envoyfake

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// connStates tracks a server's connections, so a stop can close at once
// those with no request in flight: net/http's Shutdown waits up to 5s for a
// connection that sent nothing yet.
type connStates struct {
	mu sync.Mutex
	m  map[net.Conn]http.ConnState
}

// track is (part of) an http.Server ConnState hook.
func (c *connStates) track(conn net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[net.Conn]http.ConnState{}
	}
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(c.m, conn)
	default:
		c.m[conn] = s
	}
}

// closeIdle closes connections that are new or idle and returns how many.
func (c *connStates) closeIdle() int {
	c.mu.Lock()
	var idle []net.Conn
	for conn, s := range c.m {
		if s == http.StateNew || s == http.StateIdle {
			idle = append(idle, conn)
		}
	}
	c.mu.Unlock()
	for _, conn := range idle {
		_ = conn.Close()
	}
	return len(idle)
}

// shutdownServer stops srv: it closes ln (so nothing new arrives), then the
// idle connections, then lets requests in flight finish for at most grace
// before closing everything. grace <= 0 closes everything at once.
func shutdownServer(srv *http.Server, ln io.Closer, closeIdle func() int, grace time.Duration, name string) error {
	_ = ln.Close()
	closeIdle()
	if grace <= 0 {
		_ = srv.Close()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("cannot shut down %s gracefully: %w", name, err)
	}
	return nil
}

// onceCloseListener makes Close idempotent, so a drain, a stop, Shutdown and
// Serve can all close it without reporting a spurious error.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// inflight counts running handlers and lets a stop wait for them.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil when nobody waits
}

func (f *inflight) begin() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.zero != nil {
		close(f.zero)
		f.zero = nil
	}
}

// wait blocks until no handler runs or d passes.
func (f *inflight) wait(d time.Duration) {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	if f.zero == nil {
		f.zero = make(chan struct{})
	}
	ch := f.zero
	f.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}
