package shutdownmgr

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// controlPaths are the endpoints that act or wait. A path that differs from
// one of them only by case, slashes or a suffix is a typo, never a
// load-balancer hit.
var controlPaths = []string{"/shutdown/ready", "/shutdown", "/drain", "/waitforshutdown", "/waitz"}

// mistypedControl returns the control path p looks like a typo of, or "".
func mistypedControl(p string) string {
	l := strings.ToLower(p)
	for _, c := range controlPaths {
		if strings.HasPrefix(strings.TrimLeft(l, "/"), c[1:]) {
			return c
		}
	}
	return ""
}

// isLoopback reports whether the request came from this pod's loopback.
func isLoopback(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// tokenMatches compares got with the token in constant time, whatever
// their lengths: both are hashed first, so neither the content nor the
// length of the token shows in the timing.
func tokenMatches(got string, want [sha256.Size]byte) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// logLimiter lets one line per key through every interval and counts the
// rest, so a flood of refusals costs a line per interval, not per request.
type logLimiter struct {
	interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
	dropped  map[string]int
}

// allow reports whether a line for key may be logged now, and how many were
// dropped since the last one.
func (l *logLimiter) allow(key string) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.dropped = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, seen := l.last[key]; seen && now.Sub(t) < l.interval {
		l.dropped[key]++
		return false, 0
	}
	l.last[key] = now
	dropped = l.dropped[key]
	l.dropped[key] = 0
	return true, dropped
}

// log logs at lvl through the limiter, keyed by msg.
func (l *logLimiter) log(log hclog.Logger, lvl hclog.Level, msg string, args ...any) {
	ok, dropped := l.allow(msg)
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed_since_last", dropped)
	}
	log.Log(lvl, msg, args...)
}

// limitListener caps the connections open at once. Past the cap it accepts
// and closes at once (shedding load before it costs memory) rather than
// leaving the kernel backlog to fill.
type limitListener struct {
	net.Listener
	max    int64
	open   atomic.Int64
	peak   atomic.Int64
	shed   func() // called for each shed connection
	idle   func() // called when the count drops to zero after a busy spell
	busyAt int64  // open count that makes a spell busy
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		n := l.open.Add(1)
		if n > l.max {
			l.open.Add(-1)
			_ = c.Close()
			l.shed()
			continue
		}
		for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
			// another Accept raised peak meanwhile: compare again
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

func (l *limitListener) release() {
	if l.open.Add(-1) == 0 && l.peak.Swap(0) >= l.busyAt {
		l.idle()
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}

// CloseWrite keeps net/http's half-close before closing a connection on an
// error answer, which the embedding would hide.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
