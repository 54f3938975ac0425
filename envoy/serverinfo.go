package envoy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Server states reported by /server_info. DRAINING only means health checks
// were failed; /drain_listeners does not change the state.
const (
	StateLive            = "LIVE"
	StateDraining        = "DRAINING"
	StatePreInitializing = "PRE_INITIALIZING"
	StateInitializing    = "INITIALIZING"
)

// ServerInfo is the part of Envoy's /server_info answer this package uses.
type ServerInfo struct {
	State   string // one of the State constants, never empty
	Version string // e.g. "<sha>/1.36.6/Clean/RELEASE/BoringSSL"; may be empty
	// Uptime is uptime_current_epoch: how long this Envoy process has run,
	// in whole seconds. Negative when absent or unreadable.
	Uptime time.Duration
}

// ParseServerInfo decodes a /server_info JSON body, reading only "state",
// "version" and "uptime_current_epoch". A missing or empty state is an error.
func ParseServerInfo(r io.Reader) (ServerInfo, error) {
	var doc struct {
		State   string `json:"state"`
		Version string `json:"version"`
		Uptime  string `json:"uptime_current_epoch"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return ServerInfo{}, fmt.Errorf("cannot parse server info: %w", err)
	}
	if doc.State == "" {
		return ServerInfo{}, errors.New("cannot parse server info: missing state")
	}
	// A protobuf Duration in JSON ("6s"); an unreadable one is unknown.
	up, err := time.ParseDuration(doc.Uptime)
	if err != nil || up < 0 {
		up = -1
	}
	return ServerInfo{State: doc.State, Version: doc.Version, Uptime: up}, nil
}

// ServerInfo fetches GET /server_info. A status other than 200 is a
// *StatusError; a body that is not server-info JSON is an error.
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	resp, err := c.send(ctx, c.hc, http.MethodGet, pathServerInfo, false)
	if err != nil {
		return ServerInfo{}, fmt.Errorf("cannot get server info: %w", err)
	}
	defer drainClose(resp.Body)
	si, err := ParseServerInfo(newCappedReader(resp.Body, maxServerInfoBody))
	if err != nil {
		return ServerInfo{}, fmt.Errorf("cannot get server info: %w", err)
	}
	return si, nil
}

// WaitLive polls ServerInfo until Envoy reports LIVE and then returns nil.
// Every failure is "not yet" and retried after b's next delay: refused
// connections, timeouts, non-200 answers, HTML, truncated or non-JSON
// bodies, and states other than LIVE (which wrap ErrNotLive). notify, if not
// nil, gets each such error and the delay before the next attempt.
//
// ctx bounds the wait: when it ends WaitLive returns an error wrapping
// ctx.Err() (errors.Is-able) and the last attempt's error that ctx did not
// cause. b should have no
// MaxElapsedTime of its own (set it to 0 on an ExponentialBackOff, whose
// default of 15 min would silently end a "forever" wait); if b stops anyway,
// the last attempt's error is returned. A nil ctx or b is an error. notify
// runs on the caller's goroutine. Polls reuse one keep-alive connection.
func (c *Client) WaitLive(ctx context.Context, b backoff.BackOff, notify func(err error, next time.Duration)) error {
	if ctx == nil {
		return fmt.Errorf("cannot wait for envoy to be live: %w", errNilContext)
	}
	if b == nil {
		return errors.New("cannot wait for envoy to be live: nil backoff")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cannot wait for envoy to be live: %w", err)
	}
	if eb, ok := b.(*backoff.ExponentialBackOff); ok && eb.MaxElapsedTime != 0 {
		c.log.Warn("backoff has a max elapsed time", "max_elapsed_time", eb.MaxElapsedTime)
	}

	var (
		last     error
		attempts int
	)
	op := func() error {
		attempts++
		si, err := c.ServerInfo(ctx)
		if err == nil && si.State != StateLive {
			err = fmt.Errorf("%w: state %s", ErrNotLive, si.State)
		}
		// An attempt cut short by ctx says nothing new; keep the one before
		// it, which tells the operator why Envoy was not live.
		if ctx.Err() == nil {
			last = err
		}
		if err == nil {
			c.log.Debug("envoy live", "version", si.Version, "attempts", attempts)
		}
		return err
	}
	err := backoff.RetryNotify(op, backoff.WithContext(b, ctx), notify)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if last == nil {
			return fmt.Errorf("cannot wait for envoy to be live: %w", cerr)
		}
		return fmt.Errorf("cannot wait for envoy to be live: %w (last attempt: %w)", cerr, last)
	}
	return fmt.Errorf("cannot wait for envoy to be live: backoff stopped after %d attempts: %w", attempts, err)
}
