package testproc

import (
	"net"
	"os"
	"testing"
)

// SkipOrFailInCI skips tb, except in CI (CI=true), where a skip would hide
// a broken test: there it fails with the same message.
func SkipOrFailInCI(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// FreePorts returns n distinct loopback ports that were free a moment ago,
// for a process that must be told its ports before it starts.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
