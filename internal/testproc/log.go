package testproc

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Buffer is a bytes.Buffer safe for a writer and readers in other
// goroutines, such as a child's stderr read while it runs.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns an hclog.Logger at trace level that writes through
// tb.Logf (contour internal/fixture/log.go), so logs show with the failing
// test. Lines logged after the test ends are dropped: testing panics on a
// Log from a finished test.
func Logger(tb testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: LogWriter(tb)})
}

// LogWriter is the writer under Logger: each write becomes one tb.Log
// call, until the test ends.
func LogWriter(tb testing.TB) io.Writer {
	w := &tbWriter{tb: tb}
	tb.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

type tbWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
