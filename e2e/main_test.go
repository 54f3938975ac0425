package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/pinned"
)

// kubeVersion is the pinned Kubernetes of the real node.
const kubeVersion = "v1.34.4"

// debianPackages are what the node runs besides Kubernetes itself.
var debianPackages = []string{"containerd", "runc", "etcd-server", "containernetworking-plugins", "busybox-static", "iptables"}

// theNode is the running node; nil when the real-node tests are skipped
// (skipReason says why) or it failed to start (the run fails).
var (
	theNode    *node
	skipReason string
	agentImage bool // the real pilot-agent's image was built
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	skipReason = gate()
	if skipReason != "" {
		fmt.Fprintf(os.Stderr, "e2e: real-node tests skipped: %s\n", skipReason)
		return m.Run()
	}
	start := time.Now()
	n, err := setUp()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the real node: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: node ready in %v (state in %s)\n", time.Since(start).Round(100*time.Millisecond), n.dir)
	theNode = n
	code := m.Run()
	stopStart := time.Now()
	if err := n.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping the node: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: node stopped and the host restored in %v\n", time.Since(stopStart).Round(100*time.Millisecond))
	return code
}

// gate says why the real node cannot run here, or "".
func gate() string {
	switch {
	case testing.Short():
		return "-short"
	case os.Geteuid() != 0:
		return "not root (the node installs Debian packages, runs containers and changes iptables; run as root, as CI does)"
	}
	if missing := missingPackages(); len(missing) > 0 {
		if _, err := exec.LookPath("apt-get"); err != nil {
			return fmt.Sprintf("no apt-get to install %s", strings.Join(missing, " "))
		}
	}
	return ""
}

// setUp installs the packages, builds (or finds cached) Kubernetes and the
// images, and starts the node.
func setUp() (*node, error) {
	if err := installPackages(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	t0 := time.Now()
	bins, hit, err := pinned.Kubernetes(ctx, kubeVersion)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e: Kubernetes %s in %s (cached: %v, %v)\n", kubeVersion, bins, hit, time.Since(t0).Round(time.Second))

	// The real pilot-agent runs example 01's sidecar where it can be built
	// (interop/ builds the same one, so CI finds it cached); where it
	// cannot, 01 runs with the fake's pilot-agent status port, and says so.
	var agentBin, agentTmpl string
	t0 = time.Now()
	agentBin, agentTmpl, hit, err = pinned.PilotAgent(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no real pilot-agent, example 01 uses the fake's: %v\n", err)
	} else {
		agentImage = true
		fmt.Fprintf(os.Stderr, "e2e: pilot-agent %s (cached: %v, %v)\n", pinned.IstioVersion, hit, time.Since(t0).Round(time.Second))
	}

	dir, err := os.MkdirTemp("", "el-e2e-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	images, err := buildImages(dir, agentBin, agentTmpl)
	if err != nil {
		return nil, err
	}
	n, err := startNode(bins, images)
	if err != nil {
		if n != nil {
			return nil, fmt.Errorf("%w\n%s", err, n.logTail())
		}
		return nil, err
	}
	return n, nil
}

// missingPackages lists the Debian packages not installed.
func missingPackages() []string {
	var missing []string
	for _, p := range debianPackages {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.HasSuffix(string(out), " installed") {
			missing = append(missing, p)
		}
	}
	return missing
}

// installPackages installs what is missing. A policy-rc.d that exits 101
// keeps the packaged etcd and containerd services from starting (and
// taking the node's ports); an existing one is left as it is.
func installPackages() error {
	missing := missingPackages()
	if len(missing) == 0 {
		return nil
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\n# envoy-lifecycle e2e: no service starts on install\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policy)
	}
	t0 := time.Now()
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, tailLines(string(out), 20))
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: installed %s in %v\n", strings.Join(missing, " "), time.Since(t0).Round(time.Second))
	return nil
}

// needNode skips t when the node is not running (failing in CI, where it
// must run).
func needNode(t *testing.T) *node {
	t.Helper()
	if theNode == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the real node must run in CI: %s", skipReason)
		}
		t.Skip("real node: " + skipReason)
	}
	return theNode
}
