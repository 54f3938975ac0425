package main

import (
	"strings"
	"testing"
)

// TestMgrConfigNeverEchoesTheToken: a refused token (a Secret with a
// trailing newline) is not printed; absurd durations are refused with what
// is valid.
func TestMgrConfigNeverEchoesTheToken(t *testing.T) {
	t.Setenv("SHUTDOWN_MANAGER_TOKEN", "s3cret-token\n")
	_, _, err := parseMgrConfig(forManager, nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "SHUTDOWN_MANAGER_TOKEN") {
		t.Errorf("env token: got %v, want an error naming the variable without the token", err)
	}
	t.Setenv("SHUTDOWN_MANAGER_TOKEN", "")
	_, _, err = parseMgrConfig(forManager, []string{"--token=s3cret token"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("flag token: got %v, want an error without the token", err)
	}
	for _, args := range [][]string{{"--period=1ns"}, {"--delay=9223372036.854775807"}, {"--deadline=9223372036"}} {
		_, _, err := parseMgrConfig(forDrain, args)
		if err == nil || !strings.Contains(err.Error(), "valid:") {
			t.Errorf("%v: got %v, want a one-line error saying what is valid", args, err)
		}
	}
}
