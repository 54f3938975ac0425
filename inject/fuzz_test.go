package inject

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"envoy-lifecycle/internal/udiff"
)

// fuzzModes are the option sets the fuzzer picks from with its second
// argument.
func fuzzModes(t testing.TB) []Options {
	src, err := os.ReadFile("testdata/seed.config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("seed.config.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := os.ReadFile("testdata/kinds.config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kcfg, err := ParseConfig("kinds.config.yaml", kinds)
	if err != nil {
		t.Fatal(err)
	}
	return []Options{
		{Preset: "envoy", FixGrace: true, Entrypoint: []string{"/app"}},
		{Preset: "istio", FixGrace: true, IstioStub: true},
		{Preset: "istio", FixGrace: false, Entrypoint: []string{"/app", "serve"}, IstioStub: true, DrainDeadline: time.Minute},
		{Preset: "shutdown-manager", FixGrace: true, AdminPort: 9000},
		{Preset: "envoy", FixGrace: true, AppContainers: []string{"web"}, ProxyContainer: "envoy", StopTimeout: 5 * time.Second},
		{Config: cfg, IstioStub: true},
		{Config: kcfg, IstioStub: false},
	}
}

// FuzzInject feeds manifests to Inject. It must never panic; whatever it
// returns must parse, inject again to the same bytes, and decode strictly
// into the Kubernetes types wherever the input did.
func FuzzInject(f *testing.F) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		for m := range 7 {
			f.Add(b, uint8(m))
		}
	}
	for _, s := range []string{"", "---", "--- |\n x\n", "{}", "[]", "kind: List\nitems: [{kind: Pod, spec: {containers: [{name: a}]}}]",
		"kind: Pod\nspec:\n  containers: [{name: a, command: [x]}, {name: envoy}]\n", "\ufeff---\n...\n", "a: &x 1\nb: *x\n", "%YAML 1.2\n---\nkind: Pod\n"} {
		f.Add([]byte(s), uint8(0))
	}
	modes := fuzzModes(f)
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		o := modes[int(mode)%len(modes)]
		out, _, err := Inject("fuzz.yaml", data, o)
		if err != nil {
			if out != nil {
				t.Fatalf("output %q with error %v", out, err)
			}
			if ExitCode(err) == ExitSoftware {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		checkOutput(t, "fuzz.yaml", data, out, false)
		again, _, err := Inject("fuzz.yaml", out, o)
		if err != nil {
			t.Fatalf("injecting the output again: %v\noutput:\n%s", err, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%s", udiff.Unified("once", "twice", string(out), string(again)))
		}
	})
}
