package envoy

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseAdminURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string // String() of the result
		wantErr string // substring of the error; empty means no error
	}{
		{name: "http", in: "http://127.0.0.1:15000", want: "http://127.0.0.1:15000"},
		{name: "http trailing slash", in: "http://127.0.0.1:15000/", want: "http://127.0.0.1:15000"},
		{name: "http default port", in: "http://localhost", want: "http://localhost"},
		{name: "https", in: "https://envoy.local:9901", want: "https://envoy.local:9901"},
		{name: "upper case scheme", in: "HTTP://127.0.0.1:15000", want: "http://127.0.0.1:15000"},
		{name: "ipv6", in: "http://[::1]:15000", want: "http://[::1]:15000"},
		{name: "unix", in: "unix:///var/run/envoy/admin.sock", want: "unix:///var/run/envoy/admin.sock"},
		{name: "pilot-agent", in: "http://127.0.0.1:15020", want: "http://127.0.0.1:15020"},
		{name: "bad scheme", in: "ftp://127.0.0.1:15000", wantErr: `unsupported scheme "ftp" (valid: http, https, unix)`},
		{name: "tcp scheme", in: "tcp://127.0.0.1:15000", wantErr: `unsupported scheme "tcp"`},
		{name: "no scheme host port", in: "127.0.0.1:15000", wantErr: `"127.0.0.1:15000": missing scheme (valid: http://host:port`},
		{name: "no scheme localhost", in: "localhost:15000", wantErr: "missing scheme"},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "missing host", in: "http://", wantErr: "missing host"},
		{name: "missing host with port", in: "http://:15000", wantErr: "missing host"},
		{name: "path", in: "http://127.0.0.1:15000/admin", wantErr: `path "/admin" not allowed`},
		{name: "endpoint path", in: "http://127.0.0.1:15020/quitquitquit", wantErr: "not allowed"},
		{name: "query", in: "http://127.0.0.1:15000?x=1", wantErr: "query not allowed"},
		{name: "empty query", in: "http://127.0.0.1:15000/?", wantErr: "query not allowed"},
		{name: "fragment", in: "http://127.0.0.1:15000#x", wantErr: "fragment not allowed"},
		{name: "user info redacted", in: "http://u:secret@127.0.0.1:15000", wantErr: `"http://REDACTED@127.0.0.1:15000": user info not supported`},
		{name: "bare user redacted", in: "http://secret@127.0.0.1:15000", wantErr: "user info not supported"},
		{name: "no scheme user info", in: "u:secret@127.0.0.1:15000", wantErr: `"REDACTED@127.0.0.1:15000": missing scheme`},
		{name: "query token redacted", in: "http://127.0.0.1:15000/?token=secret", wantErr: `"http://127.0.0.1:15000/?token=REDACTED": query not allowed`},
		{name: "unix query key redacted", in: "unix:///tmp/a.sock?key=secret", wantErr: "query not allowed"},
		{name: "unparsable with user info", in: "http://u:secret@[::1", wantErr: "cannot parse admin address"},
		{name: "path with token", in: "http://127.0.0.1:15000/x?auth=secret", wantErr: "not allowed"},
		{name: "empty port", in: "http://127.0.0.1:", wantErr: "empty port"},
		{name: "port zero", in: "http://127.0.0.1:0", wantErr: "out of range"},
		{name: "port too big", in: "http://127.0.0.1:70000", wantErr: "out of range"},
		{name: "unix relative", in: "unix://admin.sock", wantErr: "absolute path"},
		{name: "unix root", in: "unix:///", wantErr: "absolute path"},
		{name: "unix query", in: "unix:///tmp/a.sock?x", wantErr: "query not allowed"},
		{name: "garbage", in: "::::", wantErr: "missing scheme"},
		{name: "garbage with scheme", in: "http://[::1", wantErr: "cannot parse admin address"},
		{name: "control char", in: "http://127.0.0.1:15000\n", wantErr: "cannot parse admin address"},
		{name: "binary", in: "\x00\xff://\x01", wantErr: "cannot parse admin address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := ParseAdminURL(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseAdminURL(%q) got %v, want error containing %q", tt.in, u, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAdminURL(%q) error got %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("ParseAdminURL(%q) error leaks the password: %q", tt.in, err)
				}
				// Callers read the reason from the type, never from the text.
				var ae *AddressError
				if !errors.As(err, &ae) || ae.Reason == "" || strings.Contains(ae.Reason, "secret") || strings.Contains(ae.Value, "secret") {
					t.Fatalf("ParseAdminURL(%q) error got %#v, want an *AddressError with a reason", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAdminURL(%q) got error %v, want %q", tt.in, err, tt.want)
			}
			if got := u.String(); got != tt.want {
				t.Fatalf("ParseAdminURL(%q) got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsLocal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "127.0.0.1", in: "http://127.0.0.1:15000", want: true},
		{name: "127.1.2.3", in: "http://127.1.2.3:15000", want: true},
		{name: "::1", in: "http://[::1]", want: true},
		{name: "[::1]:15000", in: "http://[::1]:15000", want: true},
		{name: "ipv4-mapped loopback", in: "http://[::ffff:127.0.0.1]:15000", want: true},
		{name: "localhost", in: "http://localhost:15000", want: true},
		{name: "LOCALHOST", in: "https://LOCALHOST:15000", want: true},
		{name: "unix", in: "unix:///var/run/envoy/admin.sock", want: true},
		{name: "10.0.0.1", in: "http://10.0.0.1:15000", want: false},
		{name: "0.0.0.0 is not local", in: "http://0.0.0.0:15000", want: false},
		{name: ":: is not local", in: "http://[::]:15000", want: false},
		{name: "localhost.evil.com", in: "http://localhost.evil.com", want: false},
		{name: "evil localhost subdomain", in: "http://127.0.0.1.evil.com:15000", want: false},
		{name: "loopback in path", in: "http://10.0.0.1/127.0.0.1", want: false},
		{name: "localhost in user info", in: "http://localhost@10.0.0.1:15000", want: false},
		{name: "hostname", in: "http://envoy:15000", want: false},
		{name: "fqdn", in: "http://envoy.istio-system.svc.cluster.local:15000", want: false},
		{name: "localhost trailing dot", in: "http://localhost.:15000", want: false},
		{name: "ipv6 non-loopback", in: "http://[fe80::1]:15000", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tt.in)
			if err != nil {
				t.Fatalf("url.Parse(%q): %v", tt.in, err)
			}
			if got := IsLocal(u); got != tt.want {
				t.Fatalf("IsLocal(%q) got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if IsLocal(nil) {
		t.Fatalf("IsLocal(nil) got true, want false")
	}
}
