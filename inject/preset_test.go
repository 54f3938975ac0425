package inject

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/lifecycle"
	"envoy-lifecycle/shutdownmgr"
)

const twoApps = `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: web
    image: web:1
    command: [/web]
  - name: logger
    image: logger:1
    command: [/logger]
  - name: envoy
    image: envoyproxy/envoy:v1.31.2
`

// TestPresetCases checks preset behaviour the golden files don't show:
// each case gives the options, what the output must and must not contain,
// and the notes.
func TestPresetCases(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		o        Options
		want     []string
		not      []string
		notes    []string
	}{
		{
			name: "app-container picks one", manifest: twoApps,
			o:    Options{Preset: "envoy", AppContainers: []string{"web"}},
			want: []string{"command: [/envoy-lifecycle/envoy-lifecycle, --, /web]", "command: [/logger]"},
		},
		{
			name: "every non-proxy container by default", manifest: twoApps,
			o:     Options{Preset: "envoy"},
			want:  []string{"command: [/envoy-lifecycle/envoy-lifecycle, --, /web]", "command: [/envoy-lifecycle/envoy-lifecycle, --, /logger]"},
			notes: []string{"pod/p: wrapped 2 containers (web, logger): each will drain and stop the proxy; pick the app with --app-container"},
		},
		{
			name: "proxy-container names the proxy", manifest: strings.Replace(twoApps, "envoyproxy/envoy:v1.31.2", "registry.example.com/edge:3", 1),
			o:    Options{Preset: "envoy", ProxyContainer: "envoy", AppContainers: []string{"web"}},
			want: []string{"    lifecycle:\n      preStop:\n        sleep:\n          seconds: 28\n"},
		},
		{
			name:     "an app that runs its own envoy-lifecycle",
			manifest: strings.Replace(twoApps, "command: [/web]", "command: [/usr/local/bin/envoy-lifecycle, /web]", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"command: [/usr/local/bin/envoy-lifecycle, /web]", "ENVOY_ADMIN_API"},
			not:      []string{"envoy-lifecycle-install", "emptyDir"},
			notes:    []string{`pod/p: container "web" already runs /usr/local/bin/envoy-lifecycle: its command is left as it is`},
		},
		{
			name:     "variables already set are kept",
			manifest: strings.Replace(twoApps, "    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_ADMIN_API\n      value: unix:///sock/admin\n", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"value: unix:///sock/admin"},
			not:      []string{"127.0.0.1:9901"},
		},
		{
			name:     "budget from valueFrom is the default",
			manifest: strings.Replace(twoApps, "    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_LIFECYCLE_STOP_TIMEOUT\n      valueFrom: {configMapKeyRef: {name: c, key: k}}\n", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"seconds: 28"},
			notes:    []string{`pod/p: container "web": ENVOY_LIFECYCLE_STOP_TIMEOUT comes from valueFrom, so the drain budget assumes its default, 10s`},
		},
		{
			name:     "no drain: the budget leaves the deadline out",
			manifest: strings.Replace(twoApps, "    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_LIFECYCLE_DRAIN\n      value: \"false\"\n", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"seconds: 13"},
		},
		{
			name:     "no limit: no grace check, the proxy sleeps the grace period",
			manifest: strings.Replace(twoApps, "    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_LIFECYCLE_DRAIN_DEADLINE\n      value: \"0\"\n", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"seconds: 30"},
			not:      []string{"terminationGracePeriodSeconds"},
			notes:    []string{"pod/p: terminationGracePeriodSeconds not checked"},
		},
		{
			name: "flags are written over the container's values", manifest: strings.Replace(twoApps, "    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_LIFECYCLE_STOP_TIMEOUT\n      value: 1m\n", 1),
			o:     Options{Preset: "envoy", AppContainers: []string{"web"}, StopTimeout: 5 * time.Second, FixGrace: true},
			want:  []string{"value: 5s", "seconds: 23"},
			not:   []string{"value: 1m"},
			notes: nil,
		},
		{
			name: "istio without the stub", manifest: strings.Replace(twoApps, "  - name: envoy\n    image: envoyproxy/envoy:v1.31.2\n", "", 1),
			o:     Options{Preset: "istio", AppContainers: []string{"web"}},
			want:  []string{"ISTIO_QUIT_API", "http://127.0.0.1:15000"},
			not:   []string{"istio-proxy", "sleep:"},
			notes: []string{"pod/p: no istio-proxy container and --no-istio-stub: the proxy gets no preStop hook"},
		},
		{
			name: "shutdown-manager with another admin port and deadline", manifest: twoApps,
			o:    Options{Preset: "shutdown-manager", AdminPort: 19000, DrainDeadline: 90 * time.Second, FixGrace: true},
			want: []string{"- --envoy-admin-port=19000", "path: /shutdown?deadline=90", "path: /waitforshutdown?deadline=90", "terminationGracePeriodSeconds: 100"},
		},
		{
			name:     "the grace period is written to the app, raised",
			manifest: strings.Replace(twoApps, "spec:\n  containers:\n", "spec:\n  terminationGracePeriodSeconds: 10\n  containers:\n", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}, FixGrace: true},
			want:     []string{"terminationGracePeriodSeconds: 30", "    - name: ENVOY_LIFECYCLE_GRACE_PERIOD\n      value: \"30\"\n"},
		},
		{
			name:     "the grace period is written to the app, kept",
			manifest: strings.Replace(twoApps, "spec:\n  containers:\n", "spec:\n  terminationGracePeriodSeconds: 90\n  containers:\n", 1),
			o:        Options{Preset: "istio", AppContainers: []string{"web"}},
			want:     []string{"terminationGracePeriodSeconds: 90", "    - name: ENVOY_LIFECYCLE_GRACE_PERIOD\n      value: \"90\"\n"},
		},
		{
			name: "a stale grace period in the app is brought in line",
			manifest: strings.Replace(strings.Replace(twoApps, "spec:\n  containers:\n", "spec:\n  terminationGracePeriodSeconds: 10\n  containers:\n", 1),
				"    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_LIFECYCLE_GRACE_PERIOD\n      value: \"10\"\n", 1),
			o:    Options{Preset: "envoy", AppContainers: []string{"web"}, FixGrace: true},
			want: []string{"terminationGracePeriodSeconds: 30", "    - name: ENVOY_LIFECYCLE_GRACE_PERIOD\n      value: \"30\"\n"},
			not:  []string{`value: "10"`},
		},
		{
			name:     "no limit: the grace period is written as it is",
			manifest: strings.Replace(twoApps, "    command: [/web]\n", "    command: [/web]\n    env:\n    - name: ENVOY_LIFECYCLE_STOP_TIMEOUT\n      value: \"0\"\n", 1),
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"    - name: ENVOY_LIFECYCLE_GRACE_PERIOD\n      value: \"30\"\n"},
		},
		{
			name: "istio native sidecar by annotation: no stub, the proxy is left to kubelet",
			manifest: strings.Replace(strings.Replace(twoApps, "  - name: envoy\n    image: envoyproxy/envoy:v1.31.2\n", "", 1),
				"  name: p\n", "  name: p\n  annotations:\n    sidecar.istio.io/nativeSidecar: \"true\"\n", 1),
			o:     Options{Preset: "istio", AppContainers: []string{"web"}, IstioStub: true},
			want:  []string{"    - name: NEVER_KILL_ISTIO\n      value: \"true\"\n", "ISTIO_QUIT_API", "ENVOY_LIFECYCLE_GRACE_PERIOD"},
			not:   []string{"istio-proxy", "sleep:", "preStop"},
			notes: []string{`pod/p: sidecar.istio.io/nativeSidecar is "true": Istio injects istio-proxy as a native sidecar`},
		},
		{
			name: "istio native sidecar declared: NEVER_KILL_ISTIO is written over",
			manifest: strings.Replace(strings.Replace(twoApps, "  - name: envoy\n    image: envoyproxy/envoy:v1.31.2\n", "", 1),
				"spec:\n  containers:\n", "spec:\n  initContainers:\n  - name: istio-proxy\n    image: docker.io/istio/proxyv2:1.24.0\n    restartPolicy: Always\n  containers:\n", 1),
			o:     Options{Preset: "istio", AppContainers: []string{"web", "logger"}, IstioStub: true},
			want:  []string{"    - name: NEVER_KILL_ISTIO\n      value: \"true\"\n"},
			not:   []string{"image: auto", "sleep:", "preStop"},
			notes: []string{`pod/p: "istio-proxy" is an Istio native sidecar: kubelet stops it after the app exits`},
		},
		{
			name: "envoy native sidecar: no preStop, NEVER_KILL_ENVOY is written over",
			manifest: strings.Replace(strings.Replace(twoApps, "  - name: envoy\n    image: envoyproxy/envoy:v1.31.2\n", "", 1),
				"spec:\n  containers:\n", "spec:\n  initContainers:\n  - name: envoy\n    image: envoyproxy/envoy:v1.31.2\n    restartPolicy: Always\n  containers:\n", 1),
			o: Options{Preset: "envoy", AppContainers: []string{"web", "logger"}},
			want: []string{
				"    command: [/envoy-lifecycle/envoy-lifecycle, --, /web]\n    env:\n    - name: ENVOY_ADMIN_API\n      value: http://127.0.0.1:9901\n    - name: NEVER_KILL_ENVOY\n      value: \"true\"\n",
				"    command: [/envoy-lifecycle/envoy-lifecycle, --, /logger]\n    env:\n    - name: ENVOY_ADMIN_API\n      value: http://127.0.0.1:9901\n    - name: NEVER_KILL_ENVOY\n      value: \"true\"\n",
			},
			not:   []string{"sleep:", "preStop", "NEVER_KILL_ISTIO"},
			notes: []string{`pod/p: "envoy" is a native sidecar: kubelet stops it after the app exits, so it gets no preStop hook, and the wrapper leaves it running (NEVER_KILL_ENVOY=true)`},
		},
		{
			name: "envoy native sidecar found by image: a stale NEVER_KILL_ENVOY is written over",
			manifest: strings.Replace(strings.Replace(twoApps, "  - name: envoy\n    image: envoyproxy/envoy:v1.31.2\n", "", 1),
				"spec:\n  containers:\n  - name: web\n    image: web:1\n    command: [/web]\n",
				"spec:\n  initContainers:\n  - name: proxy\n    image: envoyproxy/envoy:v1.31.2\n    restartPolicy: Always\n  containers:\n  - name: web\n    image: web:1\n    command: [/web]\n    env:\n    - name: NEVER_KILL_ENVOY\n      value: \"false\"\n", 1),
			o:    Options{Preset: "envoy", AppContainers: []string{"web"}},
			want: []string{"    - name: NEVER_KILL_ENVOY\n      value: \"true\"\n"},
			not:  []string{`value: "false"`, "sleep:", "preStop"},
		},
		{
			name:     "envoy classic sidecar: the wrapper quits it",
			manifest: twoApps,
			o:        Options{Preset: "envoy", AppContainers: []string{"web"}},
			want:     []string{"seconds: 28"},
			not:      []string{"NEVER_KILL_ENVOY"},
		},
		{
			name:     "istio classic sidecar: the wrapper quits it",
			manifest: strings.Replace(twoApps, "  name: p\n", "  name: p\n  annotations:\n    sidecar.istio.io/nativeSidecar: \"false\"\n", 1),
			o:        Options{Preset: "istio", AppContainers: []string{"web"}, IstioStub: true},
			want:     []string{"seconds: 28"},
			not:      []string{"NEVER_KILL_ISTIO"},
		},
		{
			name:     "shutdown-manager: an existing manager gets the emptyDir and the files on it",
			manifest: twoApps + "  - name: shutdown-manager\n    image: registry.example.com/mgr:1\n    args: [shutdown-manager, --port=8090]\n",
			o:        Options{Preset: "shutdown-manager", FixGrace: true},
			want: []string{
				"    volumeMounts:\n    - name: envoy-lifecycle-shutdown\n      mountPath: /shutdown\n",
				"    - name: SHUTDOWN_MANAGER_STATE_FILE\n      value: /shutdown/state\n    - name: SHUTDOWN_MANAGER_READY_FILE\n      value: /shutdown/ok\n",
				"  volumes:\n  - name: envoy-lifecycle-shutdown\n    emptyDir: {}\n",
			},
			not: []string{"terminationGracePeriodSeconds"}, // 30 fits 15 + 5 + 3 + 2
		},
		{
			name: "shutdown-manager: an existing manager's own files and mount are kept",
			manifest: twoApps + "  - name: shutdown-manager\n    image: registry.example.com/mgr:1\n    args: [shutdown-manager, --state-file=/data/s]\n" +
				"    env:\n    - {name: SHUTDOWN_MANAGER_READY_FILE, value: /data/ok}\n    volumeMounts:\n    - {name: envoy-lifecycle-shutdown, mountPath: /data}\n" +
				"  volumes:\n  - name: envoy-lifecycle-shutdown\n    emptyDir: {medium: Memory}\n",
			o:    Options{Preset: "shutdown-manager", FixGrace: true},
			want: []string{"- {name: envoy-lifecycle-shutdown, mountPath: /data}", "value: /data/ok", "emptyDir: {medium: Memory}"},
			not:  []string{"mountPath: /shutdown", "SHUTDOWN_MANAGER_STATE_FILE", "/shutdown/ok"},
		},
		{
			name:     "minified JSON stays minified",
			manifest: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"web","command":["/web"]},{"name":"envoy","image":"envoyproxy/envoy"}]}}`,
			o:        Options{Preset: "envoy"},
			want:     []string{`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"initContainers":[{"name":"envoy-lifecycle-install",`, `"command":["/envoy-lifecycle/envoy-lifecycle","--","/web"],"env":[{"name":"ENVOY_ADMIN_API","value":"http://127.0.0.1:9901"},{"name":"ENVOY_LIFECYCLE_GRACE_PERIOD","value":"30"}]`},
			not:      []string{"\n", ": "},
		},
		{
			name: "no workload at all is fine", manifest: "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
			o:     Options{Preset: "istio"},
			want:  []string{"kind: Service"},
			notes: []string{"no workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod) in the manifest: nothing to do"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, notes, err := Inject("m.yaml", []byte(tc.manifest), tc.o)
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output got:\n%s\nwant it to contain %q", out, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(string(out), w) {
					t.Errorf("output got:\n%s\nwant no %q", out, w)
				}
			}
			all := strings.Join(notes, "\n")
			for _, w := range tc.notes {
				if !strings.Contains(all, w) {
					t.Errorf("notes got:\n%s\nwant %q", all, w)
				}
			}
			again, _, err := Inject("m.yaml", out, tc.o)
			if err != nil || string(again) != string(out) {
				t.Errorf("not idempotent (%v):\n%s", err, again)
			}
			checkOutput(t, tc.name, []byte(tc.manifest), out, true)
		})
	}
}

// TestManagerPresetGrace: the shutdown-manager preset raises the grace
// period to the hook deadline, plus the manager's default --shutdown-timeout
// (it serves answers in flight after its hook), plus the wrapper's quit
// budget, plus the margin: each part from the package that owns it.
func TestManagerPresetGrace(t *testing.T) {
	src := strings.Replace(twoApps, "spec:\n  containers:\n", "spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n", 1)
	out, _, err := Inject("p.yaml", []byte(src), Options{Preset: "shutdown-manager", FixGrace: true})
	if err != nil {
		t.Fatal(err)
	}
	want := int((lifecycle.DefaultDrainDeadline + shutdownmgr.DefaultShutdownTimeout + lifecycle.QuitBudget + GraceMargin) / time.Second)
	if want <= int((lifecycle.DefaultDrainDeadline+lifecycle.QuitBudget+GraceMargin)/time.Second) {
		t.Fatalf("shutdownmgr.DefaultShutdownTimeout is %s: this test needs it above a second", shutdownmgr.DefaultShutdownTimeout)
	}
	if line := fmt.Sprintf("terminationGracePeriodSeconds: %d\n", want); !strings.Contains(string(out), line) {
		t.Errorf("want %q in:\n%s", line, out)
	}
}
