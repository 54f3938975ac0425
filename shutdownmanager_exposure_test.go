package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/internal/testproc"
)

// TestManagerExposureSettings: --allow-remote-drain and --max-conns (and
// their variables) reach the server; bad values name the setting.
func TestManagerExposureSettings(t *testing.T) {
	c, _, err := parseMgrConfig(forManager, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.server(nil, hclog.NewNullLogger()); s.AllowRemoteDrain || s.MaxConns != 0 {
		t.Errorf("defaults got AllowRemoteDrain %v, MaxConns %d; want false, 0", s.AllowRemoteDrain, s.MaxConns)
	}
	t.Setenv("SHUTDOWN_MANAGER_ALLOW_REMOTE_DRAIN", "yes")
	t.Setenv("SHUTDOWN_MANAGER_MAX_CONNS", "300")
	c, _, err = parseMgrConfig(forManager, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.server(nil, hclog.NewNullLogger()); !s.AllowRemoteDrain || s.MaxConns != 300 {
		t.Errorf("from the environment got AllowRemoteDrain %v, MaxConns %d; want true, 300", s.AllowRemoteDrain, s.MaxConns)
	}
	c, _, err = parseMgrConfig(forManager, []string{"--allow-remote-drain=false", "--max-conns=0"}) // flags win
	if err != nil {
		t.Fatal(err)
	}
	if s := c.server(nil, hclog.NewNullLogger()); s.AllowRemoteDrain || s.MaxConns != 0 {
		t.Errorf("flags over the environment got AllowRemoteDrain %v, MaxConns %d; want false, 0", s.AllowRemoteDrain, s.MaxConns)
	}
	t.Setenv("SHUTDOWN_MANAGER_ALLOW_REMOTE_DRAIN", "")
	t.Setenv("SHUTDOWN_MANAGER_MAX_CONNS", "")
	for _, c := range []struct {
		args []string
		name string
	}{
		{[]string{"--max-conns=-1"}, "--max-conns"},
		{[]string{"--max-conns=many"}, "--max-conns"},
		{[]string{"--max-conns=128"}, "--max-conns"}, // not above the default --max-waiters
		{[]string{"--max-waiters=10", "--max-conns=10"}, "--max-conns"},
		{[]string{"--allow-remote-drain=maybe"}, "--allow-remote-drain"},
	} {
		_, _, err := parseMgrConfig(forManager, c.args)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Name != c.name || !strings.Contains(err.Error(), "valid:") {
			t.Errorf("%v: error got %v, want a *ConfigError naming %s", c.args, err, c.name)
		}
	}
	if _, _, err := parseMgrConfig(forManager, []string{"--max-waiters=10", "--max-conns=11"}); err != nil {
		t.Errorf("--max-conns just above --max-waiters: %v", err)
	}
}

// TestManagerMaxConns: with --max-conns 2, a third connection is closed
// without an answer while two are open, and is served once one closes.
func TestManagerMaxConns(t *testing.T) {
	t.Parallel()
	ready, state := mgrFiles(t)
	m := startManager(t, nil, "--envoy-admin", "http://127.0.0.1:1", "--ready-file", ready, "--state-file", state,
		"--max-waiters", "1", "--max-conns", "2")
	addr := fmt.Sprintf("127.0.0.1:%d", m.port)
	// healthz sends one keep-alive request on conn and reads the answer.
	healthz := func(conn net.Conn) (int, error) {
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return 0, err
		}
		if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	dial := func() net.Conn {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	first, second := dial(), dial()
	for i, conn := range []net.Conn{first, second} {
		// An answer means the server accepted it and counts it.
		if code, err := healthz(conn); code != http.StatusOK {
			t.Fatalf("connection %d: got %d, %v; want 200", i+1, code, err)
		}
	}
	if code, err := healthz(dial()); err == nil {
		t.Errorf("third connection got %d, want it closed without an answer", code)
	}
	first.Close()
	// The server sees the close when its read ends: retry until it has.
	testproc.WaitFor(t, "a connection to be served after one closed", func() bool {
		code, _ := healthz(dial())
		return code == http.StatusOK
	})
}
