package settings

import (
	"strings"
	"testing"
)

// TestErrorHidesPasswords: a bad URL setting is echoed without its password.
func TestErrorHidesPasswords(t *testing.T) {
	for _, v := range []string{
		"ftp://u:s3cret@host:1",
		"http://u:s3cret@host:port",
		"u:s3cret@host",
		"http://host/?token=s3cret",
	} {
		err := &Error{Name: "ENVOY_KILL_API", Value: v, Valid: "an http:// or https:// URL", Err: ErrUnknown}
		if got := err.Error(); strings.Contains(got, "s3cret") || !strings.HasPrefix(got, "ENVOY_KILL_API=") {
			t.Errorf("Error() for %q got %q, want the name and no password", v, got)
		}
	}
	plain := &Error{Name: "ENVOY_LIFECYCLE_DRAIN_DELAY", Value: "5x", Valid: "a duration"}
	if got := plain.Error(); !strings.Contains(got, `"5x"`) {
		t.Errorf("Error() got %q, want the plain value echoed", got)
	}
}
