package envoyfake

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timeouts of the traffic listener. Generous, like Envoy's defaults, so
// benchmarks can hold connections open; still bounded.
const (
	trafficHeaderTimeout = time.Minute
	trafficIOTimeout     = 5 * time.Minute
	trafficIdleTimeout   = 5 * time.Minute
	upstreamDialTimeout  = 5 * time.Second
)

// upstreamFailure is Envoy's local reply when the upstream cannot be reached.
const upstreamFailure = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"

// traffic is the fake's one listener: an HTTP connection manager
// (stat_prefix ingress_http) that counts real connections.
//
// Drain model (envoy-admin.md §2.3, §2.4), kept simple:
//   - non-graceful drain_listeners: the listening socket is closed now (new
//     connections are refused); open connections are left alone.
//   - graceful drain_listeners: the socket stays open and accepting, but a
//     connection accepted after the drain started is closed at once, without
//     being read (Envoy's "immediate" strategy, as the peers see it); idle
//     keep-alive connections and connections that sent no request yet are
//     closed now; a request in flight gets "Connection: close" on its answer
//     and its connection closes after it. The drain period never ends
//     (skip_exit or not, 600s is longer than any test).
//   - /healthcheck/fail: listeners keep accepting and serving; every answer
//     carries "Connection: close" (drainClose() for drain_type DEFAULT).
type traffic struct {
	ln         *onceCloseListener
	srv        *http.Server
	addr       string // host:port
	host       string
	port       int
	statAddr   string // <ip>_<port>, the stat name part
	healthPath string
	proxy      *httputil.ReverseProxy
	transport  *http.Transport
	hcFailed   func() bool
	logf       func(format string, args ...any)

	cx       gauge // open connections
	rq       gauge // requests in flight
	handlers inflight

	mu       sync.Mutex
	conns    map[*trackedConn]http.ConnState
	draining bool // graceful drain started
}

func newTraffic(o Options, hcFailed func() bool, logf func(string, ...any)) (*traffic, error) {
	addr := o.ListenerAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// An IPv4 address listens on IPv4 only, as Envoy's does: Go's "tcp" on
	// 0.0.0.0 is dual-stack and reports [::], which would rename the stat.
	network := "tcp"
	if h, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(h); ip != nil && ip.To4() != nil {
			network = "tcp4"
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on traffic address: %w", err)
	}
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		_ = ln.Close()
		return nil, fmt.Errorf("cannot use traffic address %q: not TCP", addr)
	}
	t := &traffic{
		ln:         &onceCloseListener{Listener: ln},
		addr:       ln.Addr().String(),
		host:       ta.IP.String(),
		port:       ta.Port,
		statAddr:   statAddress(ta),
		healthPath: o.HealthPath,
		hcFailed:   hcFailed,
		logf:       logf,
		conns:      map[*trackedConn]http.ConnState{},
	}
	if o.Upstream != "" {
		t.newProxy(o.Upstream)
	}
	t.srv = &http.Server{
		Handler:           t,
		ReadHeaderTimeout: trafficHeaderTimeout,
		ReadTimeout:       trafficIOTimeout,
		WriteTimeout:      trafficIOTimeout,
		IdleTimeout:       trafficIdleTimeout,
		ConnState:         t.connState,
		ErrorLog:          log.New(logWriter(logf), "envoyfake listener: ", 0),
	}
	return t, nil
}

// statAddress is Envoy's listener stat name for an address: 127.0.0.1_8080,
// or [__1]_8080 for IPv6 (':' becomes '_').
func statAddress(a *net.TCPAddr) string {
	ip := a.IP.String()
	if a.IP.To4() == nil {
		ip = "[" + strings.ReplaceAll(ip, ":", "_") + "]"
	}
	return ip + "_" + strconv.Itoa(a.Port)
}

func (t *traffic) newProxy(upstream string) {
	target := &url.URL{Scheme: "http", Host: upstream}
	t.transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: upstreamDialTimeout}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	t.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // Envoy forwards the Host header unchanged
		},
		Transport: t.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Server", "envoy") // server_header_transformation OVERWRITE
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t.logf("listener upstream error: %v", err)
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Server", "envoy")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, upstreamFailure)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

func (t *traffic) serve() { _ = t.srv.Serve(&trackedListener{onceCloseListener: t.ln, t: t}) }

// ServeHTTP is the connection manager: health-check filter, then the router
// (reverse proxy to Upstream, or Envoy's no-route 404).
func (t *traffic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.handlers.begin()
	defer t.handlers.end()
	t.rq.inc()
	defer t.rq.dec()
	w = &drainCloseWriter{ResponseWriter: w, t: t}
	switch {
	case t.healthPath != "" && r.URL.Path == t.healthPath:
		w.Header().Set("Server", "envoy")
		if t.hcFailed() {
			w.WriteHeader(http.StatusServiceUnavailable)
		} else {
			w.WriteHeader(http.StatusOK)
		}
	case t.proxy != nil:
		t.proxy.ServeHTTP(w, r)
	default:
		w.Header().Set("Server", "envoy")
		w.WriteHeader(http.StatusNotFound)
	}
}

func (t *traffic) drainClose() bool {
	if t.hcFailed() {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.draining
}

// stopListening closes the listening socket: new connections are refused,
// open ones are left alone.
func (t *traffic) stopListening() {
	_ = t.ln.Close()
	t.logf("listener stopped accepting")
}

// drainGracefully starts the graceful drain described on traffic.
func (t *traffic) drainGracefully() {
	t.mu.Lock()
	t.draining = true
	t.mu.Unlock()
	n := t.closeIdle()
	t.logf("listener graceful drain started, closed %d idle connections", n)
}

// closeIdle closes connections with no request in flight.
func (t *traffic) closeIdle() int {
	t.mu.Lock()
	var idle []*trackedConn
	for c, s := range t.conns {
		if s == http.StateNew || s == http.StateIdle {
			idle = append(idle, c)
		}
	}
	t.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
	return len(idle)
}

// stop closes the listener and its connections, letting requests in flight
// finish for at most grace.
func (t *traffic) stop(grace time.Duration) error {
	err := shutdownServer(t.srv, t.ln, t.closeIdle, grace, "listener")
	t.mu.Lock()
	rest := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		rest = append(rest, c) // hijacked (upgraded) connections net/http no longer owns
	}
	t.mu.Unlock()
	for _, c := range rest {
		_ = c.Close()
	}
	// Handlers cut off by a forced close return promptly (their contexts end).
	t.handlers.wait(quitTimeout)
	if t.transport != nil {
		t.transport.CloseIdleConnections()
	}
	return err
}

func (t *traffic) connState(c net.Conn, s http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	t.mu.Lock()
	// Closed connections already left the map in trackedConn.Close.
	_, open := t.conns[tc]
	if open && s != http.StateClosed {
		t.conns[tc] = s
	}
	// A connection that finishes its answer after the drain started was not
	// idle when closeIdle ran (net/http marks it idle only after the client
	// may already have the answer), so it is closed as it turns idle.
	closeNow := open && s == http.StateIdle && t.draining
	t.mu.Unlock()
	if closeNow {
		_ = tc.Close()
	}
}

// drainCloseWriter decides drain-close when the answer's headers go out, not
// when the request arrived, so a request in flight when a drain starts gets
// "Connection: close" (net/http then closes the connection after it).
type drainCloseWriter struct {
	http.ResponseWriter
	t     *traffic
	wrote bool
}

func (w *drainCloseWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 { // 1xx answers are not final
		w.wrote = true
		if w.t.drainClose() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *drainCloseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets the reverse proxy stream; it sends headers first, like net/http.
func (w *drainCloseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController (used by the proxy to hijack for
// upgrades) the underlying writer.
func (w *drainCloseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// trackedListener counts accepted connections and refuses (closes) those
// that arrive during a graceful drain.
type trackedListener struct {
	*onceCloseListener
	t *traffic
}

func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.onceCloseListener.Accept()
		if err != nil {
			return nil, err
		}
		t := l.t
		t.mu.Lock()
		if t.draining {
			t.mu.Unlock()
			_ = c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, t: t}
		t.conns[tc] = http.StateNew
		t.cx.inc()
		t.mu.Unlock()
		return tc, nil
	}
}

// trackedConn leaves the count exactly once, when it is closed by either side
// (net/http closes it when the client hangs up).
type trackedConn struct {
	net.Conn
	t    *traffic
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		c.t.cx.dec()
	})
	return c.Conn.Close()
}
