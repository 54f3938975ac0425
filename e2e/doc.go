// Package e2e runs the examples on a real single-node Kubernetes: etcd,
// the control plane, a kubelet and kube-proxy built from the Go module
// proxy at a pinned version (cached under ~/.cache/envoy-lifecycle/), with
// containerd, runc and the CNI plugins from Debian, no registry, no
// systemd, everything on 127.0.0.1. The tests need root; otherwise (or
// with -short) they skip with one line saying why. See README.md.
package e2e
