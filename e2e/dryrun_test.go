package e2e

import (
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeVersion: the node runs the pinned Kubernetes.
func TestNodeVersion(t *testing.T) {
	n := needNode(t)
	out, err := n.kubectl(nil, "get", "node", nodeName, "-o", "jsonpath={.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion}")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, kubeVersion+" containerd://") {
		t.Errorf("node runs %q, want kubelet %s on containerd", out, kubeVersion)
	}
}

// TestManifestsServerDryRun: the real API server accepts every manifest of
// examples/ as published (server-side dry run, strict field validation),
// and what `envoy-lifecycle inject` writes from example 07's inputs now.
func TestManifestsServerDryRun(t *testing.T) {
	k := namespace(t)
	var files []string
	filepath.WalkDir("../examples", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".config.yaml") {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 10 {
		t.Fatalf("found only %d manifests under examples/", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../examples/"), func(t *testing.T) {
			if out, err := k.kubectl(nil, "apply", "--dry-run=server", "--validate=strict", "-f", f); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
		})
	}

	bin, err := buildLifecycle(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-c", "hooks.config.yaml", "in-bookinfo.yaml"},
		{"--preset", "istio", "in-bookinfo.yaml"},
		{"--preset", "envoy", "in-envoy.yaml"},
		{"--preset", "shutdown-manager", "in-ingress.yaml"},
	} {
		t.Run("inject "+strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"inject", "-o", "-"}, args...)...)
			cmd.Dir = "../examples/07-istio-inject"
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("inject: %v", err)
			}
			if o, err := k.kubectl(out, "apply", "--dry-run=server", "--validate=strict", "-f", "-"); err != nil {
				t.Errorf("%v\n%s", err, o)
			}
		})
	}
}
