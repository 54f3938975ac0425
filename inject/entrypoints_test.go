package inject

import (
	"slices"
	"strings"
	"testing"
)

// TestParseEntrypoints reads a file of per-container entrypoints and
// refuses each wrong shape with the file, the line and what is valid.
func TestParseEntrypoints(t *testing.T) {
	eps, err := ParseEntrypoints("eps.yaml", []byte("# bookinfo\nproductpage: [python, productpage.py, \"9080\"]\nreviews:\n  - /opt/ibm/wlp/bin/server\n  - run\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := eps["productpage"]; !slices.Equal(got, []string{"python", "productpage.py", "9080"}) {
		t.Errorf("productpage: got %q", got)
	}
	if got := eps["reviews"]; !slices.Equal(got, []string{"/opt/ibm/wlp/bin/server", "run"}) {
		t.Errorf("reviews: got %q", got)
	}
	if len(eps) != 2 {
		t.Errorf("got %d entries, want 2: %q", len(eps), eps)
	}
	for _, tc := range []struct{ src, want string }{
		{"", "eps.yaml: the entrypoints file is empty"},
		{"# only a comment\n", "eps.yaml: the entrypoints file is empty"},
		{"[a, b]\n", "eps.yaml:1: the entrypoints file must map container names to commands"},
		{"web: /app serve\n", `eps.yaml:1: container "web": the entrypoint must be a list such as ["/bin/sh", "-c", "..."], got the string "/app serve"`},
		{"web: []\n", `eps.yaml:1: container "web": the entrypoint is empty`},
		{"web: [/app, [x]]\n", `eps.yaml:1: container "web": the entrypoint has a word that is not a string`},
		{"web: [/a]\nweb: [/b]\n", `eps.yaml:2: not valid YAML: mapping key "web" already defined at line 1`},
		{"web: [/a]\n---\nx: [/b]\n", "eps.yaml:2: the entrypoints file has a second document"},
		{"web: [\n", "eps.yaml:"},
	} {
		_, err := ParseEntrypoints("eps.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != ExitUsage {
			t.Errorf("ParseEntrypoints(%q): got %v (exit %d), want %q (exit %d)", tc.src, err, ExitCode(err), tc.want, ExitUsage)
		}
	}
}
