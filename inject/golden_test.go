package inject

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/udiff"
	"envoy-lifecycle/yamledit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml and *.stderr from the current output")

// goldens lists every testdata/NAME.input.yaml with what it is injected
// with (config names testdata/NAME.config.yaml); the output is
// NAME.golden.yaml and the notes NAME.stderr.
var goldens = []struct {
	name   string
	config bool
	o      Options
}{
	// config (the injector script's format)
	{"helm-multidoc", true, Options{}},
	{"kinds", true, Options{}},
	{"istio-injected", true, Options{}},
	{"istio-stub", true, Options{}},
	{"list", true, Options{}},
	{"json", true, Options{}},
	{"seed", true, Options{}},
	{"istio-native", true, Options{}},
	// presets
	{"preset-envoy", false, Options{Preset: "envoy"}},
	{"layout", false, Options{Preset: "envoy"}},
	{"preset-envoy-options", false, Options{Preset: "envoy", Entrypoint: []string{"/search"}, AdminPort: 9000, Image: "registry.example.com/envoy-lifecycle:1.0.0"}},
	{"preset-envoy-native", false, Options{Preset: "envoy"}},
	{"preset-envoy-json", false, Options{Preset: "envoy", DrainDeadline: 45 * time.Second, StopTimeout: 20 * time.Second}},
	{"preset-istio", false, Options{Preset: "istio"}},
	{"preset-shutdown-manager", false, Options{Preset: "shutdown-manager"}},
}

// injectGolden injects file as a golden entry says, with the command
// line's defaults (stub on, grace fixed), and returns the output and the
// notes as the command line prints them.
func injectGolden(t *testing.T, name, file string, config bool, o Options) (out, notes []byte) {
	t.Helper()
	o.IstioStub, o.FixGrace = true, true
	if config {
		cfgFile := filepath.Join("testdata", name+".config.yaml")
		src, err := os.ReadFile(cfgFile)
		if err != nil {
			t.Fatal(err)
		}
		if o.Config, err = ParseConfig(cfgFile, src); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, ns, err := Inject(file, src, o)
	if err != nil {
		t.Fatalf("Inject(%s) got error %v, want none", file, err)
	}
	var b bytes.Buffer
	for _, n := range ns {
		b.WriteString("envoy-lifecycle inject: note: " + n + "\n")
	}
	return out, b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tc := range goldens {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := filepath.Join("testdata", tc.name+".input.yaml")
			goldenFile := filepath.Join("testdata", tc.name+".golden.yaml")
			stderrFile := filepath.Join("testdata", tc.name+".stderr")
			got, notes := injectGolden(t, tc.name, in, tc.config, tc.o)
			if *update {
				if err := os.WriteFile(goldenFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(stderrFile, notes, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenFile)
			if err != nil {
				t.Fatalf("%v (run go test ./inject -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test ./inject -update rewrites it):\n%s", goldenFile, udiff.Unified(goldenFile, "got", string(want), string(got)))
			}
			wantNotes, err := os.ReadFile(stderrFile)
			if err != nil {
				t.Fatalf("%v (run go test ./inject -update)", err)
			}
			if !bytes.Equal(notes, wantNotes) {
				t.Errorf("stderr got:\n%s\nwant (%s):\n%s", notes, stderrFile, wantNotes)
			}

			// Idempotence: injecting the output again changes nothing,
			// byte for byte, and has nothing to say.
			again, notes2 := injectGolden(t, tc.name, goldenFile, tc.config, tc.o)
			if !bytes.Equal(again, want) {
				t.Errorf("injecting %s again changed it:\n%s", goldenFile, udiff.Unified("once", "twice", string(want), string(again)))
			}
			for _, l := range strings.Split(strings.TrimSpace(string(notes2)), "\n") {
				if strings.Contains(l, "→") || strings.Contains(l, "added") || strings.Contains(l, "replaced") {
					t.Errorf("second run still changes something: %s", l)
				}
			}

			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			checkOutput(t, in, src, got, true)
		})
	}
}

// TestGoldenCoverage fails on an input without a table entry, so that
// every golden file is checked.
func TestGoldenCoverage(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, g := range goldens {
		listed[g.name] = true
	}
	for _, in := range inputs {
		if name := strings.TrimSuffix(filepath.Base(in), ".input.yaml"); !listed[name] {
			t.Errorf("%s has no entry in goldens", in)
		}
	}
}

// checkOutput checks what every output must satisfy: it parses (but for
// documents passed through unread), it has the input's documents in order, and each document decodes strictly into the
// Kubernetes API types when the input's did (see strictDecode). With
// all, every input document must decode strictly too, so none escapes the
// check.
func checkOutput(t testing.TB, name string, in, out []byte, all bool) {
	t.Helper()
	din, dout := yamledit.Split(in), yamledit.Split(out)
	if len(din) != len(dout) {
		t.Fatalf("%s: %d documents in, %d out", name, len(din), len(dout))
	}
	for i := range dout {
		if err := din[i].Parse(); err != nil {
			// A document that names no workload kind is not read: it
			// must come out as it went in.
			if !bytes.Equal(din[i].Text(), dout[i].Text()) {
				t.Fatalf("%s: input document %d does not parse (%v) and changed:\n%s", name, i, err, dout[i].Text())
			}
			continue
		}
		if err := dout[i].Parse(); err != nil {
			t.Fatalf("%s: output document %d does not parse: %v", name, i, err)
		}
		if strictDecode == nil || dout[i].Root == nil {
			continue
		}
		if err := strictDecode(din[i].Text()); err != nil {
			if all {
				t.Errorf("%s: input document %d (line %d) fails strict decoding: %v", name, i, din[i].Line, err)
			}
			continue
		}
		if err := strictDecode(dout[i].Text()); err != nil {
			t.Errorf("%s: document %d (line %d) fails strict decoding: %v\n%s", name, i, dout[i].Line, err, dout[i].Text())
		}
	}
}

// strictDecode decodes one document strictly into the k8s.io/api type of
// its kind. It is set by strict_test.go, which builds with the k8s.io
// modules; nil skips the check.
var strictDecode func(doc []byte) error
