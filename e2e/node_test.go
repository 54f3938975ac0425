package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Node addresses. Everything listens on 127.0.0.1; pods get addresses on
// the bridge the CNI bridge plugin makes, and Services get ClusterIPs that
// only kube-proxy's iptables rules on this host know.
const (
	apiServer   = "https://127.0.0.1:6443"
	bridgeName  = "elcni0"
	bridgeMAC   = "02:65:6c:00:00:01" // locally administered
	podSubnet   = "10.88.0.0/16"
	serviceCIDR = "10.96.0.0/24"
	pauseImage  = "e2e.local/pause:test"
	nodeName    = "localhost" // the kubelet refuses a loopback node IP, not this name
)

// Bounds of the node's waits.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 15 * time.Second
)

// node is the running single-node cluster.
type node struct {
	dir        string // state: certificates, configs, data, logs
	bins       string // Kubernetes binaries
	kubeconfig string
	procs      []*proc // in start order
	before     hostState
}

// proc is one program the node started, with its log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once reaped
}

// startNode starts containerd, etcd, the control plane, the kubelet and
// kube-proxy, and waits for the node to be Ready. On error, what started is
// stopped again.
func startNode(bins string, images []imageArchive) (n *node, err error) {
	before, err := snapshotHost()
	if err != nil {
		return nil, err
	}
	// Orphans (containerd's shims, then containers whose shim died) become
	// our children, so stop can find every one of them by PID.
	if err := setSubreaper(); err != nil {
		return nil, err
	}
	// A short path: containerd's socket path must fit in sun_path.
	dir, err := os.MkdirTemp("", "el-e2e-")
	if err != nil {
		return nil, err
	}
	n = &node{dir: dir, bins: bins, kubeconfig: filepath.Join(dir, "kubeconfig"), before: before}
	defer func() {
		if err != nil {
			if serr := n.stop(); serr != nil {
				err = fmt.Errorf("%w; and stopping: %v", err, serr)
			}
		}
	}()
	if err := n.writeConfigs(); err != nil {
		return n, err
	}

	// The bridge the CNI plugin would make, made first so that the Service
	// range can be routed to it: a request to a ClusterIP that kube-proxy
	// has not (or no longer) rewritten then stays on this host instead of
	// leaving by the default route.
	//
	// Its address is set, not left to the kernel: a bridge with a random
	// address takes the lowest of its ports', so a pod whose veth sorts
	// first changes it, and each change flushes the host's ARP entries for
	// every pod. A fixed one keeps the node's network still while pods
	// come and go; the CNI plugin leaves that to whoever made the bridge.
	for _, args := range [][]string{
		{"link", "add", bridgeName, "address", bridgeMAC, "type", "bridge"},
		{"link", "set", bridgeName, "up"},
		{"route", "add", serviceCIDR, "dev", bridgeName},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return n, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if err := n.start("containerd", "containerd", "--config", n.path("containerd.toml")); err != nil {
		return n, err
	}
	if err := waitFor("containerd's socket", func() error { _, err := os.Stat(n.path("containerd/containerd.sock")); return err }); err != nil {
		return n, err
	}
	for _, img := range images {
		if out, err := n.ctr("images", "import", img.path); err != nil {
			return n, fmt.Errorf("cannot import %s: %v\n%s", img.name, err, out)
		}
	}

	if err := n.start("etcd", "etcd", "--data-dir", n.path("etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "default=http://127.0.0.1:2380", "--listen-metrics-urls", "http://127.0.0.1:2381"); err != nil {
		return n, err
	}
	if err := n.start("kube-apiserver", n.bin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379", "--bind-address=127.0.0.1", "--secure-port=6443",
		"--authorization-mode=AlwaysAllow", // tests only
		"--anonymous-auth=false",
		"--endpoint-reconciler-type=none", // a loopback endpoint for the kubernetes Service is invalid
		"--client-ca-file="+n.path("pki/ca.crt"),
		"--tls-cert-file="+n.path("pki/apiserver.crt"), "--tls-private-key-file="+n.path("pki/apiserver.key"),
		"--kubelet-client-certificate="+n.path("pki/admin.crt"), "--kubelet-client-key="+n.path("pki/admin.key"),
		"--kubelet-preferred-address-types=Hostname",
		"--service-account-key-file="+n.path("pki/sa.pub"), "--service-account-signing-key-file="+n.path("pki/sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range="+serviceCIDR, "--allow-privileged=true",
		"--cert-dir="+n.path("pki/apiserver-generated")); err != nil {
		return n, err
	}
	if err := waitFor("the API server's /readyz", func() error { return n.healthz(apiServer + "/readyz") }); err != nil {
		return n, err
	}
	if err := n.start("kube-controller-manager", n.bin("kube-controller-manager"),
		"--kubeconfig="+n.kubeconfig, "--bind-address=127.0.0.1", "--secure-port=10257", "--leader-elect=false",
		"--service-account-private-key-file="+n.path("pki/sa.key"), "--root-ca-file="+n.path("pki/ca.crt"),
		"--cert-dir="+n.path("pki/kcm")); err != nil {
		return n, err
	}
	if err := n.start("kube-scheduler", n.bin("kube-scheduler"),
		"--kubeconfig="+n.kubeconfig, "--bind-address=127.0.0.1", "--secure-port=10259", "--leader-elect=false",
		"--cert-dir="+n.path("pki/scheduler")); err != nil {
		return n, err
	}
	if err := n.start("kubelet", n.bin("kubelet"),
		"--config="+n.path("kubelet.yaml"), "--kubeconfig="+n.kubeconfig,
		"--hostname-override="+nodeName, "--root-dir="+n.path("kubelet"), "--cert-dir="+n.path("pki/kubelet")); err != nil {
		return n, err
	}
	if err := n.start("kube-proxy", n.bin("kube-proxy"), "--config="+n.path("kube-proxy.yaml")); err != nil {
		return n, err
	}
	if err := waitFor("the node to be Ready", func() error {
		out, err := n.kubectl(nil, "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "True" {
			return fmt.Errorf("node Ready=%q", out)
		}
		return nil
	}); err != nil {
		return n, err
	}
	// The admission plugin refuses pods until the controller manager has
	// made the namespace's default ServiceAccount.
	if err := waitFor("the default ServiceAccount", func() error {
		_, err := n.kubectl(nil, "get", "serviceaccount", "default")
		return err
	}); err != nil {
		return n, err
	}
	return n, nil
}

func (n *node) path(p string) string   { return filepath.Join(n.dir, p) }
func (n *node) bin(name string) string { return filepath.Join(n.bins, name) }

// start starts one program, its output in logs/NAME.log.
func (n *node) start(name, bin string, args ...string) error {
	if err := os.MkdirAll(n.path("logs"), 0o755); err != nil {
		return err
	}
	logPath := n.path("logs/" + name + ".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	// Its own process group: a ^C to the test is not its signal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	n.procs = append(n.procs, p)
	return nil
}

// stopProc sends SIGTERM, then SIGKILL after stopTimeout.
func stopProc(p *proc) error {
	select {
	case <-p.done:
		return nil // it already exited; the caller's checks will say why
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", p.name, p.cmd.Process.Pid, stopTimeout)
	case <-time.After(stopTimeout):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// stop takes the node down and undoes what it changed on the host. It
// returns every problem it met, including anything left behind.
func (n *node) stop() error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	byName := map[string]*proc{}
	for _, p := range n.procs {
		byName[p.name] = p
	}
	// Pods first, while the kubelet can still stop their sandboxes (which
	// tears down their network through CNI).
	if byName["kubelet"] != nil && byName["kube-apiserver"] != nil {
		note(n.deleteAllPods())
	}
	for _, name := range []string{"kube-proxy", "kube-scheduler", "kube-controller-manager", "kubelet"} {
		if p := byName[name]; p != nil {
			note(stopProc(p))
		}
	}
	if byName["kube-proxy"] != nil {
		// kube-proxy's own clean-up of its iptables rules.
		if out, err := exec.Command(n.bin("kube-proxy"), "--cleanup").CombinedOutput(); err != nil {
			note(fmt.Errorf("kube-proxy --cleanup: %v\n%s", err, tailLines(string(out), 10)))
		}
	}
	if byName["containerd"] != nil {
		note(n.removeContainers())
	}
	for _, name := range []string{"kube-apiserver", "etcd", "containerd"} {
		if p := byName[name]; p != nil {
			note(stopProc(p))
		}
	}
	note(killOrphans())
	note(n.before.restore())
	if after, err := snapshotHost(); err != nil {
		note(err)
	} else {
		for _, d := range n.before.diff(after) {
			note(fmt.Errorf("left behind: %s", d))
		}
	}
	if len(errs) == 0 {
		note(os.RemoveAll(n.dir))
	} else {
		errs = append(errs, fmt.Errorf("node state and logs kept in %s", n.dir))
	}
	return errors.Join(errs...)
}

// deleteAllPods deletes every workload and pod, and waits until the kubelet
// has stopped them all.
func (n *node) deleteAllPods() error {
	if _, err := n.kubectl(nil, "delete", "deployments,jobs,cronjobs,pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=false"); err != nil {
		return err
	}
	return waitFor("every pod to be gone", func() error {
		out, err := n.kubectl(nil, "get", "pods", "--all-namespaces", "-o", "name")
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(out); s != "" {
			return fmt.Errorf("pods left: %s", s)
		}
		return nil
	})
}

// removeContainers removes what the kubelet left in containerd: stopped
// sandboxes keep their snapshots and shims until the kubelet's garbage
// collection, which a test run does not wait for.
func (n *node) removeContainers() error {
	out, err := n.ctr("tasks", "ls", "-q")
	if err != nil {
		return fmt.Errorf("ctr tasks ls: %v: %s", err, out)
	}
	var errs []error
	for _, id := range strings.Fields(out) {
		n.ctr("tasks", "kill", "-s", "SIGKILL", id)
		if o, err := n.ctr("tasks", "delete", "-f", id); err != nil {
			errs = append(errs, fmt.Errorf("ctr tasks delete %s: %v: %s", id, err, o))
		}
	}
	out, err = n.ctr("containers", "ls", "-q")
	if err != nil {
		return fmt.Errorf("ctr containers ls: %v: %s", err, out)
	}
	for _, id := range strings.Fields(out) {
		if o, err := n.ctr("containers", "delete", id); err != nil {
			errs = append(errs, fmt.Errorf("ctr containers delete %s: %v: %s", id, err, o))
		}
	}
	return errors.Join(errs...)
}

// ctr runs containerd's client in the kubelet's namespace.
func (n *node) ctr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.path("containerd/containerd.sock"), "-n", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubectl runs kubectl against the node, with stdin if not nil, bounded.
func (n *node) kubectl(stdin []byte, args ...string) (string, error) {
	// Above every --timeout a test gives kubectl (rollout status: 180s).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin("kubectl"), append([]string{"--kubeconfig", n.kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// healthz GETs url with the admin's client certificate.
func (n *node) healthz(url string) error {
	cert, err := tlsClientCert(n.path("pki/admin.crt"), n.path("pki/admin.key"))
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: adminTransport(n.path("pki/ca.crt"), cert)}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// waitFor polls check until it succeeds or startTimeout passes.
func waitFor(what string, check func() error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %v", startTimeout, what, err)
		}
		time.Sleep(250 * time.Millisecond) // polling a state nothing announces
	}
}

// logTail is the end of each program's log, for a failed start.
func (n *node) logTail() string {
	var b strings.Builder
	for _, p := range n.procs {
		data, _ := os.ReadFile(p.log)
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", p.name, p.log, tailLines(string(data), 15))
	}
	return b.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeConfigs writes the certificates, the kubeconfig and the configs of
// containerd, CNI, the kubelet and kube-proxy.
func (n *node) writeConfigs() error {
	for _, d := range []string{"pki", "cni", "containerd", "kubelet", "etcd"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	if err := writePKI(n.path("pki")); err != nil {
		return err
	}
	files := map[string]string{
		"kubeconfig": fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %s, certificate-authority: %s}
users:
- name: admin
  user: {client-certificate: %s, client-key: %s}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin, namespace: default}
current-context: e2e
`, apiServer, n.path("pki/ca.crt"), n.path("pki/admin.crt"), n.path("pki/admin.key")),

		// restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and runc
		// fails every sandbox trying to lower oom_score_adj.
		"containerd.toml": fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, n.path("containerd/root"), n.path("containerd/state"), n.path("containerd/containerd.sock"),
			n.path("containerd/ttrpc.sock"), n.path("containerd/opt"), pauseImage, n.path("cni")),

		// No masquerade: pods only talk to this host and each other.
		"cni/10-e2e.conflist": fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "e2e", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
  {"type": "loopback"}]}
`, bridgeName, podSubnet, n.path("cni-ipam")),

		// Image GC off: imported images cannot be pulled again. Tiny
		// eviction thresholds: a busy shared disk must not evict test pods.
		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://%s
authentication:
  x509: {clientCAFile: %s}
  webhook: {enabled: false}
  anonymous: {enabled: false}
authorization: {mode: AlwaysAllow}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 1Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
volumePluginDir: %s
resolvConf: ""
serializeImagePulls: false
`, n.path("containerd/containerd.sock"), n.path("pki/ca.crt"), n.path("kubelet/volume-plugins")),

		// Conntrack settings 0: leave the host's sysctls alone.
		"kube-proxy.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: %s}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: %s
hostnameOverride: %s
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
nodePortAddresses: ["127.0.0.1/32"]
`, n.kubeconfig, podSubnet, nodeName),
	}
	for name, content := range files {
		if err := os.WriteFile(n.path(name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writePKI writes a CA, the API server's certificate, the admin's client
// certificate (used by every component and kubectl: the node authorizes
// everything) and the service-account key pair.
func writePKI(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "envoy-lifecycle e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	leaf := func(name string, serial int64, subj pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, dns []string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subj,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(filepath.Join(dir, name+".key"), "EC PRIVATE KEY", kb)
	}
	if err := leaf("apiserver", 2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"}); err != nil {
		return err
	}
	if err := leaf("admin", 3, pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(sa)); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// readLines returns a file's lines, or nil if it does not exist.
func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines
}
