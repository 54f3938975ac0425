package testproc

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Held is an upstream app that holds every request until Release, so a
// request, and its connection through a proxy, stays open for a drain to
// wait on.
type Held struct {
	*httptest.Server
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// HeldUpstream starts a Held on loopback; it is released and closed when
// the test ends.
func HeldUpstream(tb testing.TB) *Held {
	h := &Held{entered: make(chan struct{}, 64), release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.entered <- struct{}{}
		<-h.release
		_, _ = io.WriteString(w, "done\n")
	}))
	tb.Cleanup(func() { h.Release(); h.Close() })
	return h
}

// Addr is the upstream's host:port.
func (h *Held) Addr() string { return h.Listener.Addr().String() }

// Release lets every held request, and every later one, finish.
func (h *Held) Release() { h.once.Do(func() { close(h.release) }) }

// Hold sends a GET to url (a proxy in front of h) and returns once h holds
// it. The channel gets the request's outcome when it ends. Cleanup releases
// h first, so closing the proxy need not wait for the held request.
func (h *Held) Hold(tb testing.TB, url string) <-chan error {
	tb.Helper()
	tb.Cleanup(h.Release)
	done := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 2 * Timeout}).Get(url)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-h.entered:
	case err := <-done:
		tb.Fatalf("request to %s ended before the upstream held it: %v", url, err)
	case <-time.After(Timeout):
		tb.Fatalf("the upstream never got the request to %s", url)
	}
	return done
}
