package envoy

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces every secret Redact removes.
const redacted = "REDACTED"

// sensitiveKeys are substrings of query parameter names whose values Redact
// hides: URLs handed to us for quit calls carry credentials this way too.
var sensitiveKeys = []string{"token", "key", "secret", "pass", "pwd", "auth", "sig", "cred", "session"}

// Redact returns rawURL fit for logs and errors: user info (name and
// password, since a bare name is often a token) becomes REDACTED, and so do
// the values of query parameters whose names suggest a secret (token, key,
// secret, password, auth, signature, ...). A string that does not parse as
// a URL is replaced whole, since there is no telling where its secret is.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL, not shown)"
	}
	return redactURL(u)
}

// urlPattern finds the URLs in a text: a scheme, "://" and everything up to
// a space or a quote (Go's errors quote URLs).
var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// RedactText passes every URL in text through Redact: for messages that
// quote the user's settings, such as errors.
func RedactText(text string) string {
	return urlPattern.ReplaceAllStringFunc(text, Redact)
}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(redacted)
	}
	if c.RawQuery != "" {
		c.RawQuery = redactQuery(c.RawQuery)
	}
	return c.String()
}

// redactQuery hides sensitive values without re-encoding the rest, so the
// logged query reads as the user wrote it.
func redactQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name := strings.ToLower(k)
		if ku, err := url.QueryUnescape(k); err == nil {
			name = strings.ToLower(ku)
		}
		for _, s := range sensitiveKeys {
			if strings.Contains(name, s) {
				parts[i] = k + "=" + redacted
				break
			}
		}
	}
	return strings.Join(parts, "&")
}

// redactErr strips the URL that net/http and net/url put in their errors
// (a *url.Error, which hides only the password) and names the target by
// its redacted form instead.
func redactErr(err error, target string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: target, Err: ue.Err}
	}
	return err
}
