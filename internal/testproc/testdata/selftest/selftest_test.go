// Package selftest is run by testproc's tests, never by go test ./...
// (testdata is skipped): a full run of it must fail, because "unused" is
// registered and no test runs it, and any filtered run must pass.
package selftest

import (
	"os"
	"testing"

	"envoy-lifecycle/internal/testproc"
)

func init() {
	testproc.Register("used", testproc.Exit)
	testproc.Register("unused", testproc.Exit)
}

func TestMain(m *testing.M) { testproc.Main(m) }

func TestRunsUsed(t *testing.T) {
	argv := testproc.Argv("used", "7")
	if got := testproc.Start(t, nil, argv[0], argv[1:]...).ExitCode(); got != 7 {
		t.Errorf("ExitCode got %d, want 7", got)
	}
}

func TestNothing(t *testing.T) {
	if os.Getenv(testproc.Marker) != "" {
		t.Error("the tests ran in a child")
	}
}
