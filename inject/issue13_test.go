package inject

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"envoy-lifecycle/yamledit/edittest"
)

// TestShapesFaithful injects each preset into the document layer's shape
// fixtures (JSON compact and spaced, CRLF, 4-6-space indents, multi-line
// flow collections, {} and [] on their own lines, block scalars in edited
// lists, anchors, a long file): every input line on no edit path must be
// in the output, unchanged.
func TestShapesFaithful(t *testing.T) {
	files, err := filepath.Glob("../yamledit/testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []Options{
				{Preset: "envoy", FixGrace: true, Entrypoint: []string{"/app"}},
				{Preset: "istio", FixGrace: true, IstioStub: true, Entrypoint: []string{"/app"}},
				{Preset: "shutdown-manager", FixGrace: true},
			} {
				out, _, err := Inject(f, src, o)
				if err != nil {
					t.Fatalf("--preset %s: %v", o.Preset, err)
				}
				missing, err := edittest.Missing(src, out)
				if err != nil {
					t.Fatal(err)
				}
				if len(missing) > 0 {
					t.Errorf("--preset %s: lines on no edit path are missing from the output:\n%s\noutput:\n%s", o.Preset, strings.Join(missing, "\n"), out)
				}
				checkOutput(t, f, src, out, false)
				again, _, err := Inject(f, out, o)
				if err != nil || string(again) != string(out) {
					t.Errorf("--preset %s: not idempotent (%v)", o.Preset, err)
				}
			}
		})
	}
}

// TestIssue13Inputs checks the inputs and presets that went wrong: each
// case gives the manifest and options, and the exit code and words of the
// error, or what the output must and must not hold.
func TestIssue13Inputs(t *testing.T) {
	example := func(p string) string {
		b, err := os.ReadFile(filepath.Join("..", "examples", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	istioPod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: web, command: [/web]}\n  - {name: istio-proxy, image: docker.io/istio/proxyv2:1.24.0}\n"
	tests := []struct {
		name     string
		manifest string
		o        Options
		code     int
		errs     []string // with code != 0
		want     []string
		not      []string
		same     bool // the output is the input
		notes    []string
	}{
		{
			name: "helm template", manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\n",
			o: Options{Preset: "envoy"}, code: ExitManifest, errs: []string{"m.yaml:4: this looks like a Helm template", "helm template"},
		},
		{
			name: "helm template with a trim marker", manifest: "kind: Deployment\n{{- if .Values.on }}\nspec: {}\n{{- end }}\n",
			o: Options{Preset: "envoy"}, code: ExitManifest, errs: []string{"m.yaml:2: this looks like a Helm template"},
		},
		{
			name:     "kubectl JSON stream",
			manifest: "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\",\n  \"metadata\": {\"name\": \"a\"},\n  \"spec\": {\"containers\": [{\"name\": \"web\", \"command\": [\"/web\"]}, {\"name\": \"envoy\", \"image\": \"envoyproxy/envoy\"}]}\n}\n{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",\n  \"metadata\": {\"name\": \"s\"}\n}\n",
			o:        Options{Preset: "envoy"},
			want:     []string{`"command": ["/envoy-lifecycle/envoy-lifecycle", "--", "/web"]`, "}\n{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\""},
		},
		{
			name: "entrypoint per container", manifest: twoAppsNoCommand,
			o:    Options{Preset: "envoy", Entrypoints: map[string][]string{"web": {"/web", "serve"}, "logger": {"/logger"}}},
			want: []string{"command:\n    - /envoy-lifecycle/envoy-lifecycle\n    - --\n    - /web\n    - serve\n", "- --\n    - /logger\n"},
		},
		{
			name: "entrypoint per container wins over the default", manifest: twoAppsNoCommand,
			o:    Options{Preset: "envoy", Entrypoint: []string{"/default"}, Entrypoints: map[string][]string{"web": {"/web"}}},
			want: []string{"- --\n    - /web\n", "- --\n    - /default\n"},
		},
		{
			name: "entrypoint for a container no workload has", manifest: twoAppsNoCommand,
			o:    Options{Preset: "envoy", Entrypoint: []string{"/default"}, Entrypoints: map[string][]string{"wbe": {"/web"}}},
			code: ExitMismatch, errs: []string{`entrypoint of "wbe" (--entrypoint wbe=... or --entrypoints): no workload has an app container named "wbe"`},
		},
		{
			name: "envoy preset on Istio's proxy", manifest: istioPod, o: Options{Preset: "envoy"},
			code: ExitMismatch, errs: []string{`container "istio-proxy" is Istio's proxy`, "use --preset istio"},
		},
		{
			name: "envoy preset on Istio's proxy with --admin-port", manifest: istioPod, o: Options{Preset: "envoy", AdminPort: 15000},
			want: []string{"http://127.0.0.1:15000"},
		},
		{
			name: "istio preset without Istio warns", manifest: "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: web, command: [/web]}\n",
			o:     Options{Preset: "istio", IstioStub: true},
			want:  []string{"image: auto"},
			notes: []string{`warning: only Istio's injector fills in the stub's "image: auto"`},
		},
		{
			name: "shutdown-manager preset on examples/03", manifest: example("03-envoy-ingress-shutdown-manager/deployment.yaml"),
			o: Options{Preset: "shutdown-manager", FixGrace: true}, same: true,
			notes: []string{`container "envoy": kept its preStop hook (GET /shutdown?deadline=40)`},
		},
		{
			name: "envoy preset keeps example 02's longer sleep and its comment", manifest: example("02-envoy-sidecar-deployment/deployment.yaml"),
			o: Options{Preset: "envoy", FixGrace: true}, same: true,
		},
		{
			name: "proxy-container nosuch", manifest: twoApps, o: Options{Preset: "envoy", ProxyContainer: "nosuch"},
			code: ExitMismatch, errs: []string{`--proxy-container "nosuch": no workload has such a container`},
			notes: []string{`skipped: no container named by --proxy-container ("nosuch"; containers: web, logger, envoy)`},
		},
		{
			name: "app-container nosuch", manifest: twoApps, o: Options{Preset: "envoy", AppContainers: []string{"nosuch"}},
			code: ExitMismatch, errs: []string{`--app-container "nosuch": no workload has such a container`},
			notes: []string{`skipped: no container named by --app-container (nosuch)`},
		},
		{
			name: "a change's note only when there is an output", manifest: strings.Replace(twoApps, "spec:\n", "spec:\n  terminationGracePeriodSeconds: 10\n", 1) + "---\n" + twoAppsNoCommand,
			o: Options{Preset: "envoy", FixGrace: true}, code: ExitMismatch, errs: []string{"has no command"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, notes, err := Inject("m.yaml", []byte(tc.manifest), tc.o)
			all := strings.Join(notes, "\n")
			for _, w := range tc.notes {
				if !strings.Contains(all, w) {
					t.Errorf("notes got:\n%s\nwant %q", all, w)
				}
			}
			if tc.code != 0 {
				var e *Error
				if ExitCode(err) != tc.code || !errors.As(err, &e) {
					t.Fatalf("error got %v (exit code %d), want exit code %d", err, ExitCode(err), tc.code)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error got %q, want %q in it", err, w)
					}
				}
				if strings.Contains(all, "→") || strings.Contains(all, "added") {
					t.Errorf("notes of a change with no output:\n%s", all)
				}
				return
			}
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			if tc.same && string(out) != tc.manifest {
				t.Errorf("output got:\n%s\nwant the input", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output got:\n%s\nwant it to contain %q", out, w)
				}
			}
			checkOutput(t, tc.name, []byte(tc.manifest), out, false)
		})
	}
}

const twoAppsNoCommand = `apiVersion: v1
kind: Pod
metadata:
  name: q
spec:
  containers:
  - name: web
    image: web:1
  - name: logger
    image: logger:1
  - name: envoy
    image: envoyproxy/envoy:v1.31.2
`
