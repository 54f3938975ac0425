package shutdownmgr

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/quit"
)

// TestShutdownAutoDelay: ?delay=auto on a pod that never had traffic drains
// at once, though the fixed delay is an hour; a server whose default is
// auto takes a fixed ?delay= when one is given.
func TestShutdownAutoDelay(t *testing.T) {
	t.Parallel()
	e, _ := startEnvoy(t, envoyfake.Options{})
	s := MustOpenServer(t, e, func(s *Server) { s.Drain.Delay, s.Drain.Deadline = time.Hour, 2*time.Hour })
	a := call(context.Background(), s, http.MethodGet, "/shutdown?delay=auto")
	if a.status != http.StatusOK || !strings.HasPrefix(a.body, "drained") {
		t.Errorf("/shutdown?delay=auto got %d %q, want 200 drained", a.status, a.body)
	}
	st := s.currentDrain()
	<-st.done
	if st.res.Quiet != quit.QuietIdle {
		t.Errorf("drain got %+v, want the auto delay to end as idle", st)
	}

	e2, _ := startEnvoy(t, envoyfake.Options{})
	s2 := MustOpenServer(t, e2, func(s *Server) { s.Drain.Quiet = &quit.Quiet{Window: time.Hour} })
	if a := call(context.Background(), s2, http.MethodGet, "/shutdown?delay=0"); a.status != http.StatusOK {
		t.Errorf("/shutdown?delay=0 got %d %q, want 200", a.status, a.body)
	}
	st = s2.currentDrain()
	<-st.done
	if st.res.Quiet != "" || st.params.Auto {
		t.Errorf("drain got %+v, want the fixed delay", st)
	}
}
