package main

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/envoy"
	"envoy-lifecycle/quit"
	"envoy-lifecycle/shutdownmgr"
)

// Exit codes follow types and constants only: the same kind of failure with
// any wording gives the same code.
func TestExitCodeByType(t *testing.T) {
	t.Parallel()
	_, addrErr := envoy.ParseAdminURL("localhost:15000")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	srv := &shutdownmgr.Server{Addr: busy.Addr().String(), Drain: quit.Drain{Admin: mustClient(t), Period: time.Second}}
	listenErr := srv.Open()
	if listenErr == nil {
		srv.Close()
		t.Fatal("Open on a busy port got nil error")
	}
	cases := []struct {
		name string
		what any
		want int
	}{
		{"nothing", nil, 0},
		{"config error", &ConfigError{Name: "X", Value: "y", Valid: "z", Err: errors.New("bad")}, exitUsage},
		{"config error, reworded", &ConfigError{Name: "X", Value: "y", Valid: "anything else", Err: errors.New("deadline")}, exitUsage},
		{"wrapped config error", fmt.Errorf("ENVOY_ADMIN_API: %w", &ConfigError{Name: "X"}), exitUsage},
		{"address error", addrErr, exitUsage},
		{"address error, any reason", &envoy.AddressError{Value: "v", Reason: "admin unreachable"}, exitUsage},
		{"usage error", &usageError{"unexpected argument"}, exitUsage},
		{"cannot listen", listenErr, exitCannotListen},
		{"other error", errors.New("invalid admin address: deadline"), exitSoftware},
		{"drained", quit.ReasonDrained, 0},
		{"stat missing", quit.ReasonStatMissing, 0},
		{"cancelled", quit.ReasonCancelled, 0},
		{"drain deadline", quit.ReasonDeadline, exitDrainDeadline},
		{"admin unreachable", quit.ReasonUnreachable, exitUnavailable},
		{"stats too large", quit.ReasonStatsTooLarge, exitStatsTooLarge},
		{"ready file not written", fmt.Errorf("%w /x: %w", shutdownmgr.ErrReadyFile, errors.New("read-only file system")), exitCantCreate},
		{"SIGTERM", syscall.SIGTERM, 143},
		{"SIGINT", syscall.SIGINT, 130},
	}
	for _, c := range cases {
		if got := exitCode(c.what); got != c.want {
			t.Errorf("%s: exitCode(%v) got %d, want %d", c.name, c.what, got, c.want)
		}
	}
}

func mustClient(t *testing.T) *envoy.Client {
	t.Helper()
	c, err := envoy.New("http://127.0.0.1:1", envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
