package envoyfake

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds every wait in the tests; nothing should come near it.
const testTimeout = 5 * time.Second

// testClient opens a fresh connection per request, so admin connection
// counts and server shutdowns are not disturbed by pooled connections.
var testClient = &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableKeepAlives: true}}

// mustStart starts a fake and closes it when the test ends; it fails at the
// caller's line.
func mustStart(tb testing.TB, o Options) *Envoy {
	tb.Helper()
	if o.Logf == nil {
		o.Logf = tb.Logf
	}
	e, err := Start(o)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return e
}

type answer struct {
	status int
	header http.Header
	body   string
	resp   *http.Response
}

func call(tb testing.TB, method, url string) answer {
	tb.Helper()
	return callWith(tb, testClient, method, url, "", "")
}

func callWith(tb testing.TB, c *http.Client, method, url, ctype, body string) answer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		tb.Fatalf("NewRequest %s %s: %v", method, url, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b), resp: resp}
}

// dial opens a raw TCP connection and closes it when the test ends.
func dial(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// expectEOF fails unless the peer closes c (EOF or reset) before the deadline.
func expectEOF(tb testing.TB, c net.Conn) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		tb.Fatalf("connection still open: read timed out")
	case err == nil:
		tb.Fatalf("read %d bytes, want the connection closed", n)
	}
}

// roundTrip sends one HTTP/1.1 request on a raw connection and reads the answer.
func roundTrip(tb testing.TB, c net.Conn, br *bufio.Reader, path string) (*http.Response, string) {
	tb.Helper()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		tb.Fatalf("write request: %v", err)
	}
	return readResponse(tb, br)
}

func readResponse(tb testing.TB, br *bufio.Reader) (*http.Response, string) {
	tb.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read response body: %v", err)
	}
	return resp, string(b)
}

// statValue returns the value of a text-format stat line, or "" if absent.
func statValue(body, name string) (string, bool) {
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v, true
		}
	}
	return "", false
}

// refused reports whether a TCP dial to addr fails.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}
