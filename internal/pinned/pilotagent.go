package pinned

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The pinned pilot-agent. istio.io/istio has no semver tags; the three other
// pins replace pseudo-versions the module proxy refuses with 403
// (../../shared/reference/envoy-admin.md §5.2). interop/README.md says how
// to bump.
const (
	IstioVersion    = "v0.0.0-20260827124520-eed52ebb66ad"
	pilotAgentGoMod = `module example.com/envoy-lifecycle-pilot-agent

go 1.26

require (
	istio.io/istio ` + IstioVersion + `
	istio.io/api v1.31.1
	github.com/envoyproxy/go-control-plane/envoy v1.38.0
	github.com/envoyproxy/go-control-plane/contrib v1.36.1-0.20260729145720-a2d8c7492908
)
`
)

// PilotAgent returns the cached pilot-agent binary and Istio's Envoy
// bootstrap template, building them on a miss (hit is false then). On a
// miss with the module proxy unreachable the error is an *OfflineError.
func PilotAgent(ctx context.Context) (bin, tmpl string, hit bool, err error) {
	b := build{
		name:    "pilot-agent-" + IstioVersion,
		goMod:   pilotAgentGoMod,
		probe:   "istio.io/istio@" + IstioVersion,
		outputs: []string{"envoy_bootstrap_tmpl.json", "pilot-agent"},
		build: func(g goCmd, out string) error {
			if _, err := g("build", "-trimpath", "-o", filepath.Join(out, "pilot-agent"), "istio.io/istio/pilot/cmd/pilot-agent"); err != nil {
				return err
			}
			dir, err := g("list", "-m", "-f", "{{.Dir}}", "istio.io/istio")
			if err != nil {
				return err
			}
			t, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "tools/packaging/common/envoy_bootstrap.json"))
			if err != nil {
				return fmt.Errorf("cannot read the bootstrap template from the module: %w", err)
			}
			return os.WriteFile(filepath.Join(out, "envoy_bootstrap_tmpl.json"), t, 0o644)
		},
	}
	dir, hit, err := b.run(ctx)
	if err != nil {
		return "", "", false, err
	}
	return filepath.Join(dir, "pilot-agent"), filepath.Join(dir, "envoy_bootstrap_tmpl.json"), hit, nil
}
