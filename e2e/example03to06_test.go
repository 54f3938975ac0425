package e2e

import (
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/lbsim"
)

// backend runs the test app as the ingress examples' backend and returns
// its pod's address: the Envoy fake proxies there (the bootstrap's
// backend.default.svc.cluster.local needs cluster DNS, which this node
// does not run).
func backend(t *testing.T, k kube) string {
	t.Helper()
	pod := `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "backend", "labels": {"app": "backend"}},
  "spec": {"containers": [{"name": "app", "image": "` + imgApp + `", "imagePullPolicy": "Never",
    "command": ["/app", "serve", "--listen=0.0.0.0:8080"],
    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}`
	if out, err := k.kubectl([]byte(pod), "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return watchPods(t, k, "app=backend").readyPod(t).Status.PodIP + ":8080"
}

// ingressLoad is a load balancer that health-checks the ingress's Envoy on
// /healthz and stops sending new requests a second after the first failed
// check (inside the manifests' 5s delays).
func ingressLoad(t *testing.T, p *Pod) *load {
	return startLoad(t, lbsim.LB{Target: p.Status.PodIP + ":8080", Path: "/work", HealthPath: "/healthz",
		HealthInterval: 200 * time.Millisecond, Deprogram: time.Second})
}

// checkServed fails unless requests went through and none failed.
func checkServed(t *testing.T, s lbsim.Stats) {
	t.Helper()
	if s.Failed != 0 || s.OK == 0 {
		t.Errorf("requests got ok=%d failed=%d (first: %s), want some and no failure", s.OK, s.Failed, s.FirstFailure)
	}
}

// TestExample03IngressShutdownManager deletes a pod of 03 under load: Envoy's
// preStop /shutdown starts the drain (health checks failed, the 5s delay,
// the listeners drained, the connections polled) and returns when it is
// done; only then does Envoy get SIGTERM. The manager's /waitforshutdown
// joins it. No request fails, no hook fails, both exit 0.
func TestExample03IngressShutdownManager(t *testing.T) {
	t.Parallel()
	k := namespace(t)
	v := variant{replicas: 1, envoyArgs: map[string][]string{"envoy": fakeEnvoy("127.0.0.1:9901", backend(t, k))}}
	v.apply(t, k, "03-envoy-ingress-shutdown-manager/envoy-config.yaml")
	v.apply(t, k, "03-envoy-ingress-shutdown-manager/deployment.yaml")
	w := watchPods(t, k, "app.kubernetes.io/name=ingress")
	p := w.readyPod(t)
	logs := followLogs(t, k, p.Metadata.Name, "envoy", "shutdown-manager")
	lb := ingressLoad(t, p)
	last, took := deleteWhileServing(t, k, w, logs, p.Metadata.Name, 60*time.Second)
	checkServed(t, lb.stop())

	logs.inOrder(t,
		[2]string{"shutdown-manager", "health checks failed"},
		[2]string{"shutdown-manager", "waiting for endpoints to be deprogrammed"},
		[2]string{"envoy", "admin POST /drain_listeners?graceful"},
		[2]string{"shutdown-manager", "drain finished"},
		[2]string{"envoy", "got signal"},
	)
	if l, ok := logs.first("shutdown-manager", "drain finished"); !ok || !strings.Contains(l.text, "drained") {
		t.Errorf("drain finished got %q, want reason drained", l.text)
	}
	checkExits(t, last, map[string]int{"envoy": 0, "shutdown-manager": 0})
	checkEvents(t, k, p.Metadata.Name)
	if took >= 50*time.Second {
		t.Errorf("the pod took %v to go, past its grace period 50s", took)
	}
	t.Logf("03: deleted in %v", took.Round(time.Millisecond))
}

// TestExample04ReadyFile deletes a pod of each 04 layout under load, as
// published (Envoy and the manager as one user, so the manager can use
// Envoy's admin socket): the drain fails the health checks over the Unix
// socket without draining the listeners, writes the ready file, and only
// then is Envoy released. Then the layout without the shared user (Envoy as
// root, the manager 65532): the manager cannot connect, the drain fails
// (exit 69) and writes no ready file; the manager's SIGTERM follows its
// hook, it answers Envoy's /shutdown 503, and Envoy is stopped with
// clients still connected: the issue the shared user fixes.
func TestExample04ReadyFile(t *testing.T) {
	t.Parallel()
	needNode(t)
	for _, tc := range []struct {
		name, file, label string
		drainHook         string // the container whose hook drains
	}{
		{"contour", "contour.yaml", "edge-contour", "shutdown-manager"},
		{"marin3r", "marin3r.yaml", "edge", "shutdown-manager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := namespace(t)
			v := variant{replicas: 1, envoyArgs: map[string][]string{"envoy": fakeEnvoy("/admin/admin.sock", backend(t, k))}}
			v.apply(t, k, "04-contour-style-ready-file/envoy-config.yaml")
			v.apply(t, k, "04-contour-style-ready-file/"+tc.file)
			w := watchPods(t, k, "app.kubernetes.io/name="+tc.label)
			p := w.readyPod(t)
			logs := followLogs(t, k, p.Metadata.Name, "envoy", "shutdown-manager")
			lb := ingressLoad(t, p)
			last, took := deleteWhileServing(t, k, w, logs, p.Metadata.Name, 90*time.Second)
			checkServed(t, lb.stop())

			logs.inOrder(t,
				[2]string{"envoy", "admin POST /healthcheck/fail"},
				[2]string{"shutdown-manager", "health checks failed"},
				[2]string{"shutdown-manager", "ready file written"},
				[2]string{"envoy", "got signal"},
			)
			none(t, logs, "envoy", "/drain_listeners", "the listeners were drained (--drain-listeners=false)")
			none(t, logs, "shutdown-manager", "permission denied", "the manager could not use Envoy's admin socket")
			checkExits(t, last, map[string]int{"envoy": 0, "shutdown-manager": 0})
			checkEvents(t, k, p.Metadata.Name)
			if took >= 70*time.Second {
				t.Errorf("the pod took %v to go, past its grace period 70s", took)
			}
			t.Logf("04 %s: deleted in %v", tc.name, took.Round(time.Millisecond))
		})
	}
	t.Run("contour with envoy as root", func(t *testing.T) {
		t.Parallel()
		k := namespace(t)
		v := variant{replicas: 1, envoyArgs: map[string][]string{"envoy": fakeEnvoy("/admin/admin.sock", backend(t, k))},
			edit: func(spec obj) {
				// The layout before the fix: Envoy as root, as Envoy's image
				// runs `envoy`; the manager is the image's user, 65532.
				delete(spec, "securityContext")
			}}
		v.apply(t, k, "04-contour-style-ready-file/envoy-config.yaml")
		v.apply(t, k, "04-contour-style-ready-file/contour.yaml")
		w := watchPods(t, k, "app.kubernetes.io/name=edge-contour")
		p := w.readyPod(t)
		logs := followLogs(t, k, p.Metadata.Name, "envoy", "shutdown-manager")
		last, took := deleteWhileServing(t, k, w, logs, p.Metadata.Name, 90*time.Second)

		if _, ok := logs.first("shutdown-manager", "permission denied"); !ok {
			t.Error("the manager never said permission denied on Envoy's admin socket")
		}
		none(t, logs, "shutdown-manager", "ready file written", "a failed drain wrote the ready file")
		var events []string
		for _, e := range k.podEvents(t, p.Metadata.Name) {
			events = append(events, e.Reason+": "+e.Message)
		}
		t.Logf("events: %s", strings.Join(events, " | "))
		// The manager's SIGTERM follows its failed hook at once; on the way
		// out it answers Envoy's /shutdown 503 (no file), and the kubelet
		// then stops Envoy: the failed drain does not hold Envoy.
		logs.inOrder(t,
			[2]string{"shutdown-manager", "drain failed; not writing the ready file"},
			[2]string{"shutdown-manager", "manager exiting"},
			[2]string{"envoy", "got signal"},
		)
		checkExits(t, last, map[string]int{"envoy": 0})
		t.Logf("04 without one user: deleted in %v", took.Round(time.Millisecond))
	})
}

// TestExample05NLBHealthChecks deletes a pod of 05 while an NLB-like load
// balancer health-checks the manager's port (/lb) and sends traffic to
// Envoy: the manager gets SIGTERM at once and fails /lb; the balancer stops;
// Envoy's preStop /waitz holds Envoy's SIGTERM until no check came for
// INTERVAL (15s), then COOLDOWN (30s). No request fails; both exit 0.
func TestExample05NLBHealthChecks(t *testing.T) {
	t.Parallel()
	k := namespace(t)
	v := variant{replicas: 1, envoyArgs: map[string][]string{"envoy": fakeEnvoy("127.0.0.1:9901", backend(t, k))}}
	v.apply(t, k, "05-nlb-direct-health-checks/envoy-config.yaml")
	v.apply(t, k, "05-nlb-direct-health-checks/deployment.yaml")
	w := watchPods(t, k, "app.kubernetes.io/name=nlb-ingress")
	p := w.readyPod(t)
	logs := followLogs(t, k, p.Metadata.Name, "envoy", "shutdown-manager")
	lb := startLoad(t, lbsim.LB{Target: p.Status.PodIP + ":8080", Path: "/work",
		HealthTarget: p.Status.PodIP + ":8090", HealthPath: "/lb", HealthInterval: time.Second, Deprogram: 2 * time.Second})
	start := time.Now()
	last, took := deleteWhileServing(t, k, w, logs, p.Metadata.Name, 120*time.Second)
	stats := lb.stop()
	checkServed(t, stats)

	sig, ok := logs.first("envoy", "got signal")
	if !ok {
		t.Fatal("Envoy never got SIGTERM")
	}
	// The balancer's last check came at most 1s after the deletion.
	if held := sig.at.Sub(start); held < 45*time.Second || held > 100*time.Second {
		t.Errorf("Envoy got SIGTERM %v after the deletion, want INTERVAL 15s + COOLDOWN 30s after the last check", held)
	}
	checkExits(t, last, map[string]int{"envoy": 0, "shutdown-manager": 0})
	checkEvents(t, k, p.Metadata.Name)
	t.Logf("05: deleted in %v; Envoy held %v", took.Round(time.Millisecond), sig.at.Sub(start).Round(time.Millisecond))
}

// TestExample06NativeSidecars: 06's Deployment, deleted under load: the app
// gets SIGTERM at once, the wrapper drains Envoy (a native sidecar) and
// leaves it running (NEVER_KILL_ENVOY); the kubelet sends Envoy SIGTERM
// only after the app container exited. And 06's Job completes: the kubelet
// stops the sidecar once the app is done.
func TestExample06NativeSidecars(t *testing.T) {
	t.Parallel()
	needNode(t)
	t.Run("deployment", func(t *testing.T) {
		t.Parallel()
		k := namespace(t)
		v := variant{replicas: 1, envoyArgs: map[string][]string{"envoy": fakeEnvoy("127.0.0.1:9901", "127.0.0.1:8081")}}
		v.apply(t, k, "06-native-sidecars/envoy-config.yaml")
		v.apply(t, k, "06-native-sidecars/deployment.yaml")
		w := watchPods(t, k, "app.kubernetes.io/name=api")
		p := w.readyPod(t)
		logs := followLogs(t, k, p.Metadata.Name, "app", "envoy")
		doctor(t, k, p.Metadata.Name, "app", "/usr/local/bin/envoy-lifecycle")
		lb := ingressLoad(t, p)
		last, took := deleteWhileServing(t, k, w, logs, p.Metadata.Name, 60*time.Second)
		checkServed(t, lb.stop())

		logs.inOrder(t,
			[2]string{"app", "health checks failed"},
			[2]string{"envoy", "admin POST /drain_listeners?graceful&inboundonly"},
			[2]string{"app", "drain finished: reason=drained"},
			[2]string{"app", "app exited: code=0"},
			[2]string{"envoy", "got signal"},
		)
		none(t, logs, "envoy", "/quitquitquit", "the wrapper quit a native sidecar")
		checkAppTerm(t, logs)
		checkExits(t, last, map[string]int{"app": 0, "envoy": 0})
		checkEvents(t, k, p.Metadata.Name)
		app, _ := last.container("app")
		envoy, _ := last.container("envoy")
		if app.State.Terminated != nil && envoy.State.Terminated != nil && envoy.State.Terminated.FinishedAt.Before(app.State.Terminated.FinishedAt) {
			t.Errorf("Envoy finished at %v, before the app at %v", envoy.State.Terminated.FinishedAt, app.State.Terminated.FinishedAt)
		}
		t.Logf("06: deleted in %v", took.Round(time.Millisecond))
	})
	t.Run("job", func(t *testing.T) {
		t.Parallel()
		k := namespace(t)
		v := variant{envoyArgs: map[string][]string{"envoy": fakeEnvoy("127.0.0.1:9901", "127.0.0.1:8081")}}
		v.apply(t, k, "06-native-sidecars/envoy-config.yaml")
		objs := v.apply(t, k, "06-native-sidecars/job.yaml")
		name := dig(objs[0], "metadata")["name"].(string)
		j, cond := waitJob(t, k, name, 2*time.Minute)
		if cond != "Complete/CompletionsReached" || j.Status.Succeeded != 1 {
			t.Errorf("job got %s %+v, want Complete", cond, j.Status)
		}
		for _, p := range jobPods(t, k, name) {
			checkExits(t, &p, map[string]int{"app": 0})
		}
	})
}
