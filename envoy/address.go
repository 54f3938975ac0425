package envoy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// validForms is appended to address errors so the user sees what would work.
const validForms = "http://host:port, https://host:port, unix:///path/to/admin.sock"

// AddressError is an address ParseAdminURL refused. Callers that name the
// setting themselves use Reason, never the text of Error.
type AddressError struct {
	// Value is the address as given, through Redact: user info and secret
	// query values never show.
	Value string
	// Reason says what is wrong, e.g. "missing scheme".
	Reason string
	// Valid says what would be accepted; may be empty.
	Valid string
	// Err is url.Parse's error, when it refused the address.
	Err error
}

func (e *AddressError) Error() string {
	if e.Err != nil {
		return "cannot parse admin address: " + e.Err.Error()
	}
	msg := "invalid admin address"
	if e.Value != "" {
		msg += fmt.Sprintf(" %q", e.Value)
	}
	msg += ": " + e.Reason
	if e.Valid != "" {
		msg += " (valid: " + e.Valid + ")"
	}
	return msg
}

func (e *AddressError) Unwrap() error { return e.Err }

// RedactAddress is Redact for a setting's value, echoed in its error: one
// without a scheme, as in "user:password@host:port", is read as "//"+s so
// the user info before the host is found (Redact would take "user" for a
// scheme), and an unparsable one without "@" or "?" has no place for a
// secret, so it is shown as it is.
func RedactAddress(s string) string {
	p := s
	if !strings.Contains(s, "://") {
		p = "//" + s
	}
	if _, err := url.Parse(p); err != nil && !strings.ContainsAny(s, "@?") {
		return s
	}
	if p != s {
		return strings.TrimPrefix(Redact(p), "//")
	}
	return Redact(p)
}

// ParseAdminURL parses the base address of an Envoy admin API or of
// pilot-agent's status port. Valid forms are http://host[:port],
// https://host[:port] and unix:///absolute/path.sock. A trailing "/" is
// accepted; any other path, a query, a fragment or user info is an error,
// because endpoint paths are appended to the base. The result carries only
// the scheme and host (or socket path).
func ParseAdminURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, &AddressError{Reason: "empty", Valid: validForms}
	}
	// url.Parse reads "localhost:15000" as scheme "localhost"; catch the
	// missing "scheme://" first so the message says what is wrong.
	if !strings.Contains(s, "://") {
		return nil, &AddressError{Value: RedactAddress(s), Reason: "missing scheme", Valid: validForms}
	}
	shown := RedactAddress(s)
	u, err := url.Parse(s)
	if err != nil {
		reason := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			reason = ue.Err.Error()
		}
		if ue != nil {
			// url.Error's text holds the raw address.
			err = &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
		}
		return nil, &AddressError{Value: shown, Reason: reason, Valid: validForms, Err: err}
	}
	if u.User != nil {
		return nil, &AddressError{Value: shown, Reason: "user info not supported", Valid: validForms}
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, &AddressError{Value: shown, Reason: "query not allowed", Valid: validForms}
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.Contains(s, "#") {
		return nil, &AddressError{Value: shown, Reason: "fragment not allowed", Valid: validForms}
	}

	switch u.Scheme {
	case "http", "https":
		if u.Opaque != "" || u.Hostname() == "" {
			return nil, &AddressError{Value: shown, Reason: "missing host", Valid: validForms}
		}
		if u.Path != "" && u.Path != "/" {
			return nil, &AddressError{Value: shown, Reason: fmt.Sprintf("path %q not allowed", u.Path), Valid: validForms}
		}
		if strings.HasSuffix(u.Host, ":") {
			return nil, &AddressError{Value: shown, Reason: "empty port", Valid: validForms}
		}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, &AddressError{Value: shown, Reason: fmt.Sprintf("port %q out of range", p), Valid: "1-65535"}
			}
		}
		return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
	case "unix":
		if u.Host != "" || u.Opaque != "" || !path.IsAbs(u.Path) || u.Path == "/" {
			return nil, &AddressError{Value: shown, Reason: "unix socket needs an absolute path, as in unix:///path/to/admin.sock"}
		}
		return &url.URL{Scheme: "unix", Path: path.Clean(u.Path)}, nil
	default:
		return nil, &AddressError{Value: shown, Reason: fmt.Sprintf("unsupported scheme %q", u.Scheme), Valid: "http, https, unix"}
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
