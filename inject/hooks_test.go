package inject

import (
	"os"
	"strings"
	"testing"
)

// TestConfigIstioNative checks the config's istio-proxy hook on pods
// whose Istio sidecar is native: a declared native istio-proxy gets the
// hook, and a pod annotated sidecar.istio.io/nativeSidecar: "true" gets
// the stub as a native sidecar init container, which Istio merges into the
// one it injects, not as a container.
// webDeployment is a Deployment of an app without a command beside Envoy.
var webDeployment = func() string {
	b, err := os.ReadFile("testdata/web-deployment.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func TestConfigIstioNative(t *testing.T) {
	const hook = "        lifecycle:\n          preStop:\n            exec:\n              command: [a]\n"
	tests := []struct {
		name     string
		manifest string
		want     []string
		not      []string
		notes    []string
	}{
		{
			name:     "by annotation: the stub is a native sidecar init container",
			manifest: strings.Replace(webDeployment, "        app: web\n    spec:", "        app: web\n      annotations:\n        sidecar.istio.io/nativeSidecar: \"true\"\n    spec:", 1),
			want: []string{"    spec:\n      initContainers:\n      - name: istio-proxy\n        image: auto\n        restartPolicy: Always\n" + hook +
				"      containers:\n      - name: web\n        image: web:1\n      - name: envoy\n        image: envoyproxy/envoy:v1.31.2\n"},
			notes: []string{`deployment/web: added init container "istio-proxy" with restartPolicy: Always, carrying only the preStop hook`},
		},
		{
			name:     "by annotation, after other init containers",
			manifest: strings.Replace(webDeployment, "        app: web\n    spec:\n", "        app: web\n      annotations:\n        sidecar.istio.io/nativeSidecar: \"true\"\n    spec:\n      initContainers:\n      - name: migrate\n        image: web:1\n", 1),
			want:     []string{"      initContainers:\n      - name: migrate\n        image: web:1\n      - name: istio-proxy\n        image: auto\n        restartPolicy: Always\n" + hook},
		},
		{
			name:     "declared native: the hook goes on it",
			manifest: strings.Replace(webDeployment, "    spec:\n      containers:\n", "    spec:\n      initContainers:\n      - name: istio-proxy\n        image: auto\n        restartPolicy: Always\n      containers:\n", 1),
			want:     []string{"      initContainers:\n      - name: istio-proxy\n        image: auto\n        restartPolicy: Always\n" + hook},
			not:      []string{"      - name: web\n        image: web:1\n        lifecycle"},
		},
		{
			name:     "classic: the stub is a container",
			manifest: webDeployment,
			want:     []string{"      - name: istio-proxy\n        image: auto\n" + hook},
			not:      []string{"initContainers", "restartPolicy"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseConfig("config.yaml", []byte("deployment:\n  web:\n    istio-proxy: [a]\n"))
			if err != nil {
				t.Fatal(err)
			}
			o := Options{Config: cfg, IstioStub: true}
			out, notes, err := Inject("m.yaml", []byte(tc.manifest), o)
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output got:\n%s\nwant it to contain %q", out, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(string(out), w) {
					t.Errorf("output got:\n%s\nwant no %q", out, w)
				}
			}
			if n := strings.Count(string(out), "name: istio-proxy"); n != 1 {
				t.Errorf("output got:\n%s\nwant one istio-proxy, got %d", out, n)
			}
			all := strings.Join(notes, "\n")
			for _, w := range tc.notes {
				if !strings.Contains(all, w) {
					t.Errorf("notes got:\n%s\nwant %q", all, w)
				}
			}
			again, _, err := Inject("m.yaml", out, o)
			if err != nil || string(again) != string(out) {
				t.Errorf("not idempotent (%v):\n%s", err, again)
			}
			checkOutput(t, tc.name, []byte(tc.manifest), out, true)
		})
	}
}
