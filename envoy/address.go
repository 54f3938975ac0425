package envoy

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// validForms is appended to address errors so the user sees what would work.
const validForms = "valid: http://host:port, https://host:port, unix:///path/to/admin.sock"

// ParseAdminURL parses the base address of an Envoy admin API or of
// pilot-agent's status port. Valid forms are http://host[:port],
// https://host[:port] and unix:///absolute/path.sock. A trailing "/" is
// accepted; any other path, a query, a fragment or user info is an error,
// because endpoint paths are appended to the base. The result carries only
// the scheme and host (or socket path).
func ParseAdminURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("invalid admin address: empty (%s)", validForms)
	}
	// url.Parse reads "localhost:15000" as scheme "localhost"; catch the
	// missing "scheme://" first so the message says what is wrong.
	if !strings.Contains(s, "://") {
		return nil, fmt.Errorf("invalid admin address %q: missing scheme (%s)", s, validForms)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cannot parse admin address: %w", err)
	}
	if u.User != nil {
		// Redacted: never echo a password.
		return nil, fmt.Errorf("invalid admin address %q: user info not supported (%s)", u.Redacted(), validForms)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("invalid admin address %q: query not allowed (%s)", s, validForms)
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.Contains(s, "#") {
		return nil, fmt.Errorf("invalid admin address %q: fragment not allowed (%s)", s, validForms)
	}

	switch u.Scheme {
	case "http", "https":
		if u.Opaque != "" || u.Hostname() == "" {
			return nil, fmt.Errorf("invalid admin address %q: missing host (%s)", s, validForms)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("invalid admin address %q: path %q not allowed (%s)", s, u.Path, validForms)
		}
		if strings.HasSuffix(u.Host, ":") {
			return nil, fmt.Errorf("invalid admin address %q: empty port (%s)", s, validForms)
		}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("invalid admin address %q: port %q out of range (valid: 1-65535)", s, p)
			}
		}
		return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
	case "unix":
		if u.Host != "" || u.Opaque != "" || !path.IsAbs(u.Path) || u.Path == "/" {
			return nil, fmt.Errorf("invalid admin address %q: unix socket needs an absolute path, as in unix:///path/to/admin.sock", s)
		}
		return &url.URL{Scheme: "unix", Path: path.Clean(u.Path)}, nil
	default:
		return nil, fmt.Errorf("invalid admin address %q: unsupported scheme %q (valid: http, https, unix)", s, u.Scheme)
	}
}

// IsLocal reports whether u addresses this pod (network namespace): a unix
// socket, "localhost" (any case, no trailing dot), or a loopback IP
// (127.0.0.0/8, ::1, IPv4-mapped 127.x). Hosts are compared after parsing,
// never by substring, so "localhost.evil.com" is not local.
//
// The unspecified addresses 0.0.0.0 and :: are NOT local: they are bind
// addresses, and although Linux routes a connect to them to the host, that is
// platform behaviour rather than an address of this pod; configure 127.0.0.1.
func IsLocal(u *url.URL) bool {
	if u == nil {
		return false
	}
	if u.Scheme == "unix" {
		return true
	}
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}
