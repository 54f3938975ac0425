// Package examples holds Kubernetes manifests, one folder per layout (see
// README.md). It has no code: its tests check every manifest (decoded
// strictly into the k8s.io/api types, and against the grace-period budget)
// and play each layout's termination timeline with real processes, the
// built envoy-lifecycle and the Envoy fake, under kubeletsim.
package examples
