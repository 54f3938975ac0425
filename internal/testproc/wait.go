package testproc

import (
	"fmt"
	"testing"
	"time"
)

// pollEvery is how often the waits re-check a condition: a poll interval
// within a deadline (tini's busy_wait), never a guess at how long a thing
// takes.
const pollEvery = time.Millisecond

// WaitFor polls cond until it holds; it fails the test, naming what, if
// Timeout passes first.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if err := Poll(func() (bool, string) { return cond(), what }); err != nil {
		tb.Fatalf("timed out waiting for %s", what)
	}
}

// Poll calls cond until it holds or Timeout passes, then returns an error
// holding cond's last message. Child commands, which have no testing.TB,
// use it.
func Poll(cond func() (ok bool, msg string)) error {
	deadline := time.Now().Add(Timeout)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %s", Timeout, msg)
		}
		time.Sleep(pollEvery)
	}
}

// WaitClosed fails the test, naming what, unless ch is closed within
// Timeout.
func WaitClosed(tb testing.TB, what string, ch <-chan struct{}) {
	tb.Helper()
	Recv(tb, what, ch)
}

// Recv returns the next value from ch (the zero value once closed); it
// fails the test, naming what, if none comes within Timeout.
func Recv[T any](tb testing.TB, what string, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Timeout):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// IsClosed reports, without blocking, whether ch is closed.
func IsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
