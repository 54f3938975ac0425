package envoy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxHelp bounds the /help text read (a few KB in every release).
const maxHelp = 256 << 10

// Endpoints returns the admin endpoints GET /help lists, each mapped to
// whether it is marked "(POST)" (mutating). /help has no side effect, so
// doctor can observe what this Envoy serves instead of inferring it from the
// version string.
func (c *Client) Endpoints(ctx context.Context) (map[string]bool, error) {
	resp, err := c.send(ctx, c.hc, http.MethodGet, "/help", false)
	if err != nil {
		return nil, fmt.Errorf("cannot read /help: %w", err)
	}
	defer drainClose(resp.Body)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxHelp))
	if err != nil {
		return nil, fmt.Errorf("cannot read /help: %w", err)
	}
	return ParseHelp(string(b)), nil
}

// ParseHelp reads /help's text: "  /path: text" or "  /path (POST): text"
// per endpoint, after a first line "admin commands are:".
func ParseHelp(s string) map[string]bool {
	eps := map[string]bool{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "/") {
			continue
		}
		head, _, _ := strings.Cut(line, ":")
		path, post := strings.CutSuffix(head, " (POST)")
		if strings.ContainsAny(path, " \t") {
			continue
		}
		eps[path] = post
	}
	return eps
}
