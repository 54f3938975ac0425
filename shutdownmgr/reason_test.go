package shutdownmgr

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"envoy-lifecycle/quit"
)

// The answer's status follows the drain's Reason constant, never its words.
func TestAnswerStatusByReason(t *testing.T) {
	t.Parallel()
	cases := []struct {
		reason quit.Reason
		want   int
	}{
		{quit.ReasonDrained, http.StatusOK},
		{quit.ReasonStatMissing, http.StatusOK},
		{quit.ReasonDeadline, http.StatusRequestTimeout},
		{quit.ReasonUnreachable, http.StatusBadGateway},
		{quit.ReasonCancelled, http.StatusServiceUnavailable},
		// A reason this package does not know is not a success.
		{quit.Reason("drained "), http.StatusServiceUnavailable},
	}
	s := &Server{}
	for _, c := range cases {
		w := httptest.NewRecorder()
		s.answerResult(w, hclog.NewNullLogger(), quit.Result{Reason: c.reason, Took: time.Second})
		if w.Code != c.want {
			t.Errorf("reason %q: status got %d, want %d", c.reason, w.Code, c.want)
		}
	}
}
