// Package injecttest holds test support for inject: the large manifest
// that the inject benchmark and go run ./bench measure. Never linked into
// the binary.
package injecttest

import (
	"encoding/json"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// LargeDocs is the number of documents in Large: the size of the real
// file issue 13 measured (10,593 documents, 5 MB).
const LargeDocs = 10593

// Large returns a manifest of LargeDocs documents, about 5 MB, as a
// rendered Helm chart of many services looks: a Deployment with an app
// and an Envoy sidecar, a Service, a ConfigMap and a RoleBinding, in
// turn. The same call gives the same bytes.
func Large() []byte { return Stream(LargeDocs) }

// Stream returns the first docs documents of the sequence Large is made
// of, to measure how the cost grows with the input.
func Stream(docs int) []byte {
	var b strings.Builder
	for i := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		switch n := i / 4; i % 4 {
		case 0:
			fmt.Fprintf(&b, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-%[1]d
  namespace: shop
  labels:
    app.kubernetes.io/name: web-%[1]d
    app.kubernetes.io/part-of: shop
  annotations:
    meta.helm.sh/release-name: shop   # rendered by helm
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: web-%[1]d
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web-%[1]d
    spec:
      containers:
        - name: web
          image: "registry.example.com/shop/web:1.%[1]d.0"
          command: ["/web", "--listen=:8080", "--id=%[1]d"]
          ports:
            - containerPort: 8080
              name: http
          resources:
            requests: {cpu: 100m, memory: 128Mi}
        - name: envoy
          image: envoyproxy/envoy:v1.31.2
          args: [-c, /etc/envoy/envoy.yaml]
          volumeMounts:
            - name: envoy-config
              mountPath: /etc/envoy
      volumes:
        - name: envoy-config
          configMap:
            name: envoy-%[1]d
`, n)
		case 1:
			fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata:
  name: web-%[1]d
  namespace: shop
spec:
  selector:
    app.kubernetes.io/name: web-%[1]d
  ports:
  - name: http
    port: 80
    targetPort: http
`, n)
		case 2:
			fmt.Fprintf(&b, `apiVersion: v1
kind: ConfigMap
metadata:
  name: envoy-%[1]d
  namespace: shop
data:
  envoy.yaml: |
    admin:
      address: {socket_address: {address: 127.0.0.1, port_value: 9901}}
    static_resources:
      listeners:
      - name: ingress
        address: {socket_address: {address: 0.0.0.0, port_value: 8443}}
      clusters:
      - name: app
        load_assignment:
          cluster_name: app
          endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 8080}}}}]}]
`, n)
		default:
			fmt.Fprintf(&b, `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: web-%[1]d
  namespace: shop
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: reader
subjects:
- kind: ServiceAccount
  name: web-%[1]d
  namespace: shop
`, n)
		}
	}
	return []byte(b.String())
}

// JSONList returns the Deployments of Stream(4*items) as one kubectl-style
// JSON List (kubectl get deploy -o json): one document and, when indent is
// "", one line, the layout where per-edit work on lines and offsets would
// grow with the whole input.
func JSONList(items int, indent string) []byte {
	var objs []any
	for _, d := range strings.Split(string(Stream(4*items)), "---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			panic(err)
		}
		if m["kind"] == "Deployment" {
			objs = append(objs, m)
		}
	}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
	var out []byte
	var err error
	if indent == "" {
		out, err = json.Marshal(list)
	} else {
		out, err = json.MarshalIndent(list, "", indent)
	}
	if err != nil {
		panic(err)
	}
	return append(out, '\n')
}
