package lbsim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ServeApp is the pod's app in the simulation, run as a real process behind
// the wrapper: it serves addr, each request taking work, and prints "ready"
// once listening. On SIGTERM it prints one line,
//
//	term <unix ns> inflight <requests in flight> served <requests done>
//
// then shuts down gracefully and returns its exit code.
func ServeApp(addr string, work time.Duration, out io.Writer) int {
	// Registered before listening: a SIGTERM that comes early must still be
	// reported, not kill the process.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var (
		mu       sync.Mutex
		inflight int
		served   int
	)
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inflight++
			mu.Unlock()
			time.Sleep(work) // the request's simulated work
			io.WriteString(w, "ok\n")
			mu.Lock()
			inflight--
			served++
			mu.Unlock()
		}),
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		return 1
	}
	go srv.Serve(ln)
	fmt.Fprintln(out, "ready")
	<-term
	mu.Lock()
	fmt.Fprintf(out, "term %d inflight %d served %d\n", time.Now().UnixNano(), inflight, served)
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return 1
	}
	return 0
}

// FreePort returns a loopback address with a port that was free a moment
// ago, for an app that must be named before it starts.
func FreePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// TermLine is the parsed SIGTERM line of ServeApp.
type TermLine struct {
	At               time.Time
	Inflight, Served int
}

// ParseTermLine parses the line ServeApp prints on SIGTERM.
func ParseTermLine(s string) (TermLine, error) {
	var ns int64
	var t TermLine
	if _, err := fmt.Sscanf(s, "term %d inflight %d served %d", &ns, &t.Inflight, &t.Served); err != nil {
		return t, fmt.Errorf("cannot parse term line %q: %w", s, err)
	}
	t.At = time.Unix(0, ns)
	return t, nil
}
