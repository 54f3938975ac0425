package inject

// The strict check decodes every output document into the k8s.io/api type
// of its kind, refusing unknown and misplaced fields. The k8s.io modules
// are test-only: nothing in the binary imports them.

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func init() { strictDecode = decodeStrict }

// decodeStrict decodes one YAML or JSON document strictly into its kind's
// type; the items of a List are decoded each by its own kind.
func decodeStrict(doc []byte) error {
	var meta struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}
	var obj any
	switch meta.Kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "ReplicaSet":
		obj = &appsv1.ReplicaSet{}
	case "Job":
		obj = &batchv1.Job{}
	case "CronJob":
		obj = &batchv1.CronJob{}
	case "Pod":
		obj = &corev1.Pod{}
	case "ReplicationController":
		obj = &corev1.ReplicationController{}
	case "Service":
		obj = &corev1.Service{}
	case "ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "List":
		var l corev1.List
		if err := yaml.UnmarshalStrict(doc, &l); err != nil {
			return err
		}
		for i, it := range l.Items {
			if err := decodeStrict(it.Raw); err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("no type for kind %q in this check", meta.Kind)
	}
	return yaml.UnmarshalStrict(doc, obj)
}
