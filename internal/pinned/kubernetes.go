package pinned

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// KubeCommands are the Kubernetes programs the real node runs.
var KubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl"}

// stagingReplace matches a staging module's replace line in
// k8s.io/kubernetes's go.mod: "k8s.io/api => ./staging/src/k8s.io/api".
var stagingReplace = regexp.MustCompile(`(?m)^\s*(k8s\.io/[a-z0-9-]+)\s*=>\s*\./staging/`)

// kubeVersion matches the versions Kubernetes publishes: v1.MINOR.PATCH.
var kubeVersion = regexp.MustCompile(`^v1\.(\d+)\.(\d+)$`)

// Kubernetes returns the directory of the Kubernetes binaries at version
// (v1.34.4), building them on a miss. `go install k8s.io/kubernetes/...`
// cannot work: that module requires its staging modules at v0.0.0 and maps
// them to ./staging with replace lines, which are ignored in a dependency.
// So a scratch module requires k8s.io/kubernetes and replaces each staging
// module with its published v0.MINOR.PATCH.
func Kubernetes(ctx context.Context, version string) (dir string, hit bool, err error) {
	m := kubeVersion.FindStringSubmatch(version)
	if m == nil {
		return "", false, fmt.Errorf("kubernetes version %q: want v1.MINOR.PATCH, such as v1.34.4", version)
	}
	staging := "v0." + m[1] + "." + m[2]
	b := build{
		name:    "kubernetes-" + version,
		goMod:   "module example.com/envoy-lifecycle-kubernetes\n\ngo 1.26\n",
		probe:   "k8s.io/kubernetes@" + version,
		outputs: KubeCommands,
		build: func(g goCmd, out string) error {
			js, err := g("mod", "download", "-json", "k8s.io/kubernetes@"+version)
			if err != nil {
				return err
			}
			gomod := regexp.MustCompile(`"GoMod":\s*"([^"]+)"`).FindSubmatch(js)
			if gomod == nil {
				return fmt.Errorf("go mod download printed no GoMod: %s", js)
			}
			src, err := os.ReadFile(string(gomod[1]))
			if err != nil {
				return err
			}
			var mod strings.Builder
			fmt.Fprintf(&mod, "module example.com/envoy-lifecycle-kubernetes\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", version)
			for _, r := range stagingReplace.FindAllSubmatch(src, -1) {
				fmt.Fprintf(&mod, "\t%s => %s %s\n", r[1], r[1], staging)
			}
			mod.WriteString(")\n")
			modDir, err := g("env", "GOMOD")
			if err != nil {
				return err
			}
			if err := os.WriteFile(strings.TrimSpace(string(modDir)), []byte(mod.String()), 0o644); err != nil {
				return err
			}
			var pkgs []string
			for _, c := range KubeCommands {
				pkgs = append(pkgs, "k8s.io/kubernetes/cmd/"+c)
			}
			if _, err := g(append([]string{"get"}, withVersion(pkgs, version)...)...); err != nil {
				return err
			}
			// Without these the node reports v0.0.0, which kubectl and the
			// kubelet's version checks dislike.
			v := "k8s.io/component-base/version"
			ldflags := fmt.Sprintf("-s -w -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s", v, version, v, v, m[1])
			_, err = g(append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", out + "/"}, pkgs...)...)
			return err
		},
	}
	return b.run(ctx)
}

func withVersion(pkgs []string, version string) []string {
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = p + "@" + version
	}
	return out
}
