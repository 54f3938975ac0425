package inject

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envoy-lifecycle/yamledit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml and *.stderr from the current output")

// goldens lists every testdata/NAME.input.yaml with the arguments it is
// injected with; the output is NAME.golden.yaml and the notes NAME.stderr.
var goldens = []struct {
	name string
	args []string
}{
	// config (the injector script's format)
	{"helm-multidoc", []string{"-c", "testdata/helm-multidoc.config.yaml"}},
	{"kinds", []string{"-c", "testdata/kinds.config.yaml"}},
	{"istio-injected", []string{"-c", "testdata/istio-injected.config.yaml"}},
	{"istio-stub", []string{"-c", "testdata/istio-stub.config.yaml"}},
	{"list", []string{"-c", "testdata/list.config.yaml"}},
	{"json", []string{"-c", "testdata/json.config.yaml"}},
	{"seed", []string{"-c", "testdata/seed.config.yaml"}},
	{"istio-native", []string{"-c", "testdata/istio-native.config.yaml"}},
	// presets
	{"preset-envoy", []string{"--preset", "envoy"}},
	{"layout", []string{"--preset", "envoy"}},
	{"preset-envoy-options", []string{"--preset", "envoy", "--entrypoint", "/search", "--admin-port", "9000", "--image", "registry.example.com/envoy-lifecycle:1.0.0"}},
	{"preset-envoy-native", []string{"--preset", "envoy"}},
	{"preset-envoy-json", []string{"--preset", "envoy", "--drain-deadline", "45s", "--stop-timeout", "20s"}},
	{"preset-istio", []string{"--preset", "istio"}},
	{"preset-shutdown-manager", []string{"--preset", "shutdown-manager"}},
}

// inject runs Main on file with args plus "-o -", and returns stdout and
// stderr. It fails the test on a non-zero exit code.
func runInject(t *testing.T, file string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append(append([]string{}, args...), "-o", "-", file)
	if code := Main(argv, nil, &out, &errb); code != 0 {
		t.Fatalf("Main(%q) got exit code %d, want 0; stderr:\n%s", argv, code, errb.String())
	}
	return out.Bytes(), errb.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tc := range goldens {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := filepath.Join("testdata", tc.name+".input.yaml")
			goldenFile := filepath.Join("testdata", tc.name+".golden.yaml")
			stderrFile := filepath.Join("testdata", tc.name+".stderr")
			got, notes := runInject(t, in, tc.args...)
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
				var d bytes.Buffer
				_ = unifiedDiff(&d, goldenFile, "got", want, got, 3)
				t.Errorf("output differs from %s (go test ./inject -update rewrites it):\n%s", goldenFile, d.String())
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
			again, notes2 := runInject(t, goldenFile, tc.args...)
			if !bytes.Equal(again, want) {
				var d bytes.Buffer
				_ = unifiedDiff(&d, "once", "twice", want, again, 3)
				t.Errorf("injecting %s again changed it:\n%s", goldenFile, d.String())
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

// checkOutput checks what every output must satisfy: it parses, it has the
// input's documents in order, and each document decodes strictly into the
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
		if err := dout[i].Parse(); err != nil {
			t.Fatalf("%s: output document %d does not parse: %v", name, i, err)
		}
		if err := din[i].Parse(); err != nil {
			t.Fatalf("%s: input document %d does not parse: %v", name, i, err)
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
