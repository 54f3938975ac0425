// Package envoy is a client for Envoy's admin API and Istio pilot-agent's
// status port, with pure parsers for their answers beside the I/O.
//
// Every method takes a context, and every request is also bounded by
// Options.Timeout, so a black-holed port never hangs a caller. The wire
// contracts are those of reference/envoy-admin.md.
package envoy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultTimeout bounds each request when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Endpoint paths, shared by Envoy admin and (for /quitquitquit) pilot-agent.
const (
	pathServerInfo      = "/server_info"
	pathHealthcheckFail = "/healthcheck/fail"
	pathHealthcheckOK   = "/healthcheck/ok"
	pathDrainListeners  = "/drain_listeners"
	pathQuit            = "/quitquitquit"
	pathStats           = "/stats"
)

// Body size limits. Bodies beyond a limit are an error rather than silently
// truncated, since a cut stats dump would give a wrong connection count.
const (
	maxServerInfoBody = 4 << 20  // node metadata can be large in Istio
	maxStatsBody      = 64 << 20 // an unfiltered dump of a big mesh
	maxErrorBody      = 1 << 10  // kept in StatusError.Body
	maxDrainBody      = 64 << 10 // read past this and the connection is dropped, not reused
)

var (
	// ErrUnreachable means the connection could not be established (refused,
	// no such socket, dial timeout): the request never reached the server.
	ErrUnreachable = errors.New("endpoint unreachable")
	// ErrConnectionClosed means the request was written but the connection
	// was closed or reset before a response arrived. The server may have
	// acted on it; after Quit this usually means the process is exiting, so
	// confirm with Gone.
	ErrConnectionClosed = errors.New("connection closed before response")
	// ErrNotLive is wrapped by WaitLive's per-attempt errors when Envoy
	// answered with a state other than LIVE.
	ErrNotLive = errors.New("envoy not live")

	errNilContext = errors.New("nil context")
)

// StatusError is a response with a status other than 200.
type StatusError struct {
	Method string // request method, e.g. "POST"
	Path   string // request path including any query, e.g. "/drain_listeners?graceful"
	Code   int    // HTTP status code
	Body   string // start of the body (at most 1 KiB), untrimmed
}

// Error formats as `POST /healthcheck/fail: status 500: <body>`, with at
// most the first 200 bytes of the body, trimmed.
func (e *StatusError) Error() string {
	b := e.Body
	if len(b) > 200 {
		b = b[:200]
	}
	b = strings.TrimSpace(strings.ToValidUTF8(b, ""))
	if b == "" {
		return fmt.Sprintf("%s %s: status %d", e.Method, e.Path, e.Code)
	}
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Code, b)
}

// Options configures a Client.
type Options struct {
	// Timeout bounds each request, body included, and each dial made by
	// Gone. Zero means DefaultTimeout (1s); negative is an error.
	Timeout time.Duration
	// Logger receives debug and trace logs. Nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// TLSConfig is used for https:// bases. Nil means Go's defaults
	// (system roots, verified host name).
	TLSConfig *tls.Config
}

// Client talks to one Envoy admin API or pilot-agent status port. Create it
// with New; it is safe for concurrent use.
type Client struct {
	base    *url.URL
	reqBase string // prefix of every request URL
	network string // for Gone: "tcp" or "unix"
	address string // for Gone: host:port or socket path
	timeout time.Duration
	log     hclog.Logger
	dialer  *net.Dialer
	hc      *http.Client // keep-alive, for polling
	quitHC  *http.Client // one connection per request, for Quit
}

// New returns a client for base, an address accepted by ParseAdminURL. For
// unix:// bases requests go over the socket and their URLs read
// http://localhost/...
func New(base string, o Options) (*Client, error) {
	u, err := ParseAdminURL(base)
	if err != nil {
		return nil, fmt.Errorf("cannot create envoy client: %w", err)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("cannot create envoy client: invalid timeout %s (valid: 0 for %s, or positive)", o.Timeout, DefaultTimeout)
	}
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}

	c := &Client{
		base:    u,
		timeout: timeout,
		log:     log,
		dialer:  &net.Dialer{Timeout: timeout},
	}
	dial := c.dialer.DialContext
	if u.Scheme == "unix" {
		c.network, c.address = "unix", u.Path
		c.reqBase = "http://localhost"
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.dialer.DialContext(ctx, "unix", u.Path)
		}
	} else {
		c.network, c.address = "tcp", hostPort(u)
		c.reqBase = u.Scheme + "://" + u.Host
	}

	c.hc = newHTTPClient(dial, o.TLSConfig, timeout, true)
	// Quit gets a fresh connection so that EOF after the request was
	// written means the server closed it, not that a stale pooled
	// connection died before the server saw anything.
	c.quitHC = newHTTPClient(dial, o.TLSConfig, timeout, false)
	return c, nil
}

// newHTTPClient is the one HTTP client every request of this package goes
// through, admin calls and PostURL alike.
func newHTTPClient(dial func(context.Context, string, string) (net.Conn, error), tlsConfig *tls.Config, timeout time.Duration, keepAlive bool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// No Proxy: HTTP_PROXY in a pod must not send local,
			// unauthenticated admin or quit calls through a proxy.
			Proxy:               nil,
			DialContext:         dial,
			TLSClientConfig:     tlsConfig.Clone(),
			TLSHandshakeTimeout: timeout,
			DisableKeepAlives:   !keepAlive,
			DisableCompression:  true,
			MaxIdleConns:        2,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
		Timeout: timeout,
		// Admin and quit endpoints never need a redirect; following one
		// could send the POST out of the pod. A 3xx is the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// PostURL sends one body-less POST to rawURL exactly as given (http or
// https): no proxy from the environment, no redirect followed (a 3xx is
// returned as the status), a fresh connection, at most 64 KiB of the answer
// read. It returns the status of any answer. Errors name the URL through
// Redact and wrap ErrUnreachable or ErrConnectionClosed as the Client's do.
// Zero timeout means DefaultTimeout.
func PostURL(ctx context.Context, rawURL string, timeout time.Duration) (int, error) {
	if ctx == nil {
		return 0, errNilContext
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, fmt.Errorf("invalid quit URL %s (valid: http://host[:port]/path or https://...)", Redact(rawURL))
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout}
	hc := newHTTPClient(dialer.DialContext, nil, timeout, false)
	wrote := new(atomic.Bool)
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("cannot post %s: %w", Redact(rawURL), redactErr(err, Redact(rawURL)))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, classify(ctx, redactErr(err, Redact(rawURL)), wrote.Load())
	}
	drainClose(resp.Body)
	return resp.StatusCode, nil
}

// hostPort returns u's host:port, filling in the scheme's default port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Base returns a copy of the parsed base address.
func (c *Client) Base() *url.URL {
	u := *c.base
	return &u
}

// send issues a body-less request for path (which may carry a query) and
// returns the response if its status is 200; the caller must drainClose its
// body. Any other status is read, closed and returned as *StatusError.
// idempotent lets the transport retry a POST once on a stale keep-alive
// connection; only set it for endpoints where a repeat is harmless.
func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, idempotent bool) (*http.Response, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	var wrote *atomic.Bool
	if method != http.MethodGet {
		// Only POSTs need to tell "closed after the request was written"
		// apart; GETs in the poll loop skip the trace allocation.
		wrote = new(atomic.Bool)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
		})
	}
	req, err := http.NewRequestWithContext(ctx, method, c.reqBase+path, nil)
	if err != nil {
		return nil, err
	}
	if idempotent {
		// A nil value marks the request replayable without sending the header.
		req.Header["Idempotency-Key"] = nil
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classify(ctx, err, wrote != nil && wrote.Load())
	}
	if method != http.MethodGet {
		c.log.Debug("admin request", "method", method, "path", path, "status", resp.StatusCode, "duration", time.Since(start))
	} else if c.log.IsTrace() {
		c.log.Trace("admin request", "method", method, "path", path, "status", resp.StatusCode, "duration", time.Since(start))
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		drainClose(resp.Body)
		return nil, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(b)}
	}
	return resp, nil
}

// classify tags transport errors with ErrUnreachable or ErrConnectionClosed.
// Errors caused by ctx are left alone: they say why on their own.
func classify(ctx context.Context, err error, wrote bool) error {
	if ctx.Err() != nil {
		return err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if wrote && isClosed(err) {
		return fmt.Errorf("%w: %w", ErrConnectionClosed, err)
	}
	return err
}

// isClosed reports whether err means the peer closed or reset the connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// drainClose reads a bounded rest of body and closes it, so that the
// keep-alive connection can be reused.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrainBody)
	_ = body.Close()
}

// post sends a body-less POST and discards the 200 answer.
func (c *Client) post(ctx context.Context, hc *http.Client, path string, idempotent bool) error {
	resp, err := c.send(ctx, hc, http.MethodPost, path, idempotent)
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

// Get sends a GET to path and returns the status; any status but 200 is a
// *StatusError. doctor uses it to probe endpoints without side effects.
func (c *Client) Get(ctx context.Context, path string) (int, error) {
	resp, err := c.send(ctx, c.hc, http.MethodGet, path, false)
	if err != nil {
		return 0, err
	}
	drainClose(resp.Body)
	return resp.StatusCode, nil
}

// FailHealthchecks makes Envoy fail its health checks (POST
// /healthcheck/fail): /ready and server_info turn DRAINING and listeners
// with the default drain type start closing connections. Idempotent.
func (c *Client) FailHealthchecks(ctx context.Context) error {
	if err := c.post(ctx, c.hc, pathHealthcheckFail, true); err != nil {
		return fmt.Errorf("cannot fail health checks: %w", err)
	}
	return nil
}

// OKHealthchecks reverses FailHealthchecks (POST /healthcheck/ok).
func (c *Client) OKHealthchecks(ctx context.Context) error {
	if err := c.post(ctx, c.hc, pathHealthcheckOK, true); err != nil {
		return fmt.Errorf("cannot restore health checks: %w", err)
	}
	return nil
}

// DrainOptions selects the /drain_listeners flags. The zero value stops all
// listeners at once.
type DrainOptions struct {
	Graceful    bool // drain connections over --drain-time-s before stopping listeners
	InboundOnly bool // only listeners with traffic_direction INBOUND
	SkipExit    bool // never stop the listeners (Envoy 1.28+; releases answer 400 without Graceful)
}

// drainPath builds /drain_listeners with the flags as bare keys, in the
// order graceful, inboundonly, skip_exit.
func drainPath(o DrainOptions) string {
	var b strings.Builder
	b.WriteString(pathDrainListeners)
	sep := byte('?')
	for _, f := range [...]struct {
		on   bool
		name string
	}{{o.Graceful, "graceful"}, {o.InboundOnly, "inboundonly"}, {o.SkipExit, "skip_exit"}} {
		if f.on {
			b.WriteByte(sep)
			b.WriteString(f.name)
			sep = '&'
		}
	}
	return b.String()
}

// DrainListeners asks Envoy to drain its listeners (POST
// /drain_listeners?graceful&inboundonly[&skip_exit]). Envoy before 1.12 has
// no such endpoint and answers 404: the error then holds a *StatusError with
// Code 404, for callers to errors.As and report "not supported".
func (c *Client) DrainListeners(ctx context.Context, o DrainOptions) error {
	if err := c.post(ctx, c.hc, drainPath(o), true); err != nil {
		return fmt.Errorf("cannot drain listeners: %w", err)
	}
	return nil
}

// Quit asks the process behind the base address to exit (POST
// /quitquitquit). Envoy's admin port and pilot-agent's status port (for
// example ISTIO_QUIT_API) share the path; 200 is success. A refused
// connection wraps ErrUnreachable. A connection closed or reset after the
// request was written wraps ErrConnectionClosed: the process may be exiting,
// so check Gone. The request is never retried.
func (c *Client) Quit(ctx context.Context) error {
	if err := c.post(ctx, c.quitHC, pathQuit, false); err != nil {
		return fmt.Errorf("cannot quit: %w", err)
	}
	return nil
}

// Gone reports whether the base address refuses connections: a TCP dial is
// refused, or the unix socket is refused or no longer exists. Any other
// outcome (the dial succeeds, times out, or ctx ends) is false, because it
// does not show the process went away.
func (c *Client) Gone(ctx context.Context) bool {
	if ctx == nil {
		ctx = context.Background()
	}
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err == nil {
		_ = conn.Close()
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return true
	}
	c.log.Debug("cannot tell whether endpoint is gone", "error", err)
	return false
}

// ErrTooLarge means an answer was bigger than this package reads: a body
// past its size limit, or more stats than it keeps. The server answered; it
// is not unreachable.
var ErrTooLarge = errors.New("answer too large")

// cappedReader reads at most max bytes (left starts at max+1) and fails
// with an error wrapping ErrTooLarge beyond that.
type cappedReader struct {
	r    io.Reader
	left int64
	err  error
}

func newCappedReader(r io.Reader, max int64) *cappedReader {
	return &cappedReader{r: r, left: max + 1, err: fmt.Errorf("%w: body over %d bytes", ErrTooLarge, max)}
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left <= 0 {
		return n, c.err
	}
	return n, err
}
