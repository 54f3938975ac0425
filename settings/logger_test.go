package settings

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestSecondsLogger: item 11. A duration is a number of seconds under a _s
// key in JSON and text, through With and Named too.
func TestSecondsLogger(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	root := SecondsLogger(hclog.New(&hclog.LoggerOptions{Output: &b, JSONFormat: true, Level: hclog.Trace}))
	args := []any{"took", 6096 * time.Microsecond, "count", 3}
	root.Named("drain").With("deadline", 10*time.Minute).Info("drained", args...)
	if args[0] != "took" {
		t.Errorf("the caller's args were modified: %v", args)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	want := map[string]any{"took_s": 0.006096, "deadline_s": 600.0, "count": 3.0, "@module": "drain"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("JSON %s got %v (%T), want %v; line %s", k, got[k], got[k], v, b.String())
		}
	}
	for _, k := range []string{"took", "deadline"} {
		if _, ok := got[k]; ok {
			t.Errorf("JSON still has %s: %s", k, b.String())
		}
	}

	b.Reset()
	text := SecondsLogger(hclog.New(&hclog.LoggerOptions{Output: &b, Level: hclog.Trace}))
	text.Warn("slow", "waited", 1500*time.Millisecond, "took_s", 2*time.Second, "tiny", 25*time.Microsecond)
	if s := b.String(); !strings.Contains(s, "waited_s=1.5") || !strings.Contains(s, "took_s=2") || strings.Contains(s, "took_s_s") || !strings.Contains(s, "tiny_s=0.000025") {
		t.Errorf("text line got %q, want waited_s=1.5, took_s=2 and tiny_s=0.000025", s)
	}
	if SecondsLogger(text) != text {
		t.Error("SecondsLogger wrapped twice")
	}
}
