package examples

// The strict check decodes every document of every manifest into its
// k8s.io/api type, refusing unknown, misplaced and duplicate fields and
// values of the wrong type, as kubectl's server-side field validation
// does. The k8s.io modules are test-only: nothing in the binary imports
// them.

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty object of the Go type for apiVersion and
// kind, or nil for a kind the examples do not know.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Pod":
		return &corev1.Pod{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "batch/v1/CronJob":
		return &batchv1.CronJob{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	}
	return nil
}

// decodeStrict decodes one document into its kind's type.
func decodeStrict(src []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(src, &head); err != nil {
		return fmt.Errorf("cannot read apiVersion and kind: %w", err)
	}
	obj := newObject(head.APIVersion, head.Kind)
	if obj == nil {
		return fmt.Errorf("unknown kind %s %s", head.APIVersion, head.Kind)
	}
	return yaml.UnmarshalStrict(src, obj)
}

// TestManifestsDecodeStrictly: every YAML document under examples/ is a
// valid object of a known kind.
func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	for _, d := range docs {
		t.Run(d.String(), func(t *testing.T) {
			if err := decodeStrict(d.src); err != nil {
				t.Errorf("%s: %v", d, err)
			}
		})
	}
}

// TestKnownKindsHaveTypes keeps the sanity test's kind list and the types
// above in step.
func TestKnownKindsHaveTypes(t *testing.T) {
	t.Parallel()
	for kind, apiVersion := range knownKinds {
		if newObject(apiVersion, kind) == nil {
			t.Errorf("%s %s: no type in newObject", apiVersion, kind)
		}
	}
}

// TestStrictDecodingCatchesMistakes: the check refuses a misspelled field,
// a field in the wrong place, a value of the wrong type and an unknown
// kind, so a typo in an example cannot pass.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	t.Parallel()
	const good = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 40
      containers:
      - name: app
        image: registry.example/app:1.0
        lifecycle:
          preStop:
            sleep:
              seconds: 35
`
	if err := decodeStrict([]byte(good)); err != nil {
		t.Fatalf("the good manifest fails: %v", err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"misspelled field", "terminationGracePeriodSeconds", "terminationGracePeriodSecond"},
		{"misplaced field", "      terminationGracePeriodSeconds: 40\n", "      containers: []\n    terminationGracePeriodSeconds: 40\n"},
		{"wrong type", "seconds: 35", "seconds: soon"},
		{"nested typo", "preStop:", "preStopp:"},
		{"unknown kind", "kind: Deployment", "kind: Deploymnet"},
		{"duplicate field", "      terminationGracePeriodSeconds: 40\n", "      terminationGracePeriodSeconds: 40\n      terminationGracePeriodSeconds: 41\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatalf("the edit %q did not apply", tc.from)
			}
			if err := decodeStrict([]byte(bad)); err == nil {
				t.Errorf("decoded without error:\n%s", bad)
			}
		})
	}
}
