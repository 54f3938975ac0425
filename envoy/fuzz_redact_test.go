package envoy

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzRedact(f *testing.F) {
	for _, s := range []string{"http://u:p@h/q", "http://h/q?token=x", "http://u:p@[::1", "unix:///a.sock", "", "::", "http://h/?a=1&&=&token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		u, err := url.Parse(s)
		if err != nil {
			if got != "(unparsable URL, not shown)" {
				t.Fatalf("Redact(%q) got %q for an unparsable URL", s, got)
			}
			return
		}
		if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(got, p) && !strings.Contains(redactURL(&url.URL{Host: u.Host, Path: u.Path, RawQuery: u.RawQuery, Fragment: u.Fragment}), p) {
			t.Fatalf("Redact(%q) got %q, which holds the password", s, got)
		}
		if u.User != nil && !strings.Contains(got, "REDACTED@") {
			t.Fatalf("Redact(%q) got %q, user info not replaced", s, got)
		}
	})
}
