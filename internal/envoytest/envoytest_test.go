package envoytest

import (
	"net/http"
	"testing"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

func TestHoldCountsOneConnectionEach(t *testing.T) {
	t.Parallel()
	e, h := StartHeld(t, envoyfake.Options{})
	first := Hold(t, e, h)
	Hold(t, e, h)
	if n := e.ActiveConnections(); n != 2 {
		t.Errorf("ActiveConnections got %d, want 2", n)
	}
	h.Release()
	if err := testproc.Recv(t, "the first request", first); err != nil {
		t.Errorf("first request: %v", err)
	}
}

func TestWaitRequestsAndPosts(t *testing.T) {
	t.Parallel()
	e := Start(t, envoyfake.Options{})
	c := &http.Client{Timeout: testproc.Timeout}
	for range 2 {
		resp, err := c.Post(e.AdminURL()+"/healthcheck/fail", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	WaitRequests(t, e, "/healthcheck/fail", 2)
	if n := Posts(e.Requests(), "/healthcheck/fail"); n != 2 {
		t.Errorf("Posts got %d, want 2", n)
	}
	if n := Posts(e.Requests(), "/quitquitquit"); n != 0 {
		t.Errorf("Posts of /quitquitquit got %d, want 0", n)
	}
}
