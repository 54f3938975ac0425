package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// istioProxy is the container Istio's injector adds to the examples' Job
// pods (sidecar.istio.io/inject: "true"): the Envoy fake with its admin on
// 15000 and a pilot-agent status port on 15020 whose /quitquitquit stops
// it, as istio-proxy's does.
func istioProxy() obj {
	return obj{
		"name": "istio-proxy", "image": imgEnvoy, "imagePullPolicy": "Never",
		"command": []any{"envoy"},
		"args":    []any{"-admin", "127.0.0.1:15000", "-pilot-agent", "127.0.0.1:15020", "-listener", "127.0.0.1:15006"},
	}
}

// realIstioProxy is istio-proxy as Istio injects it, run by the real
// pilot-agent (its Envoy is the fake), without istiod: the settings are
// those of the interop test (../interop).
func realIstioProxy() obj {
	pc := `{"binaryPath": "/usr/local/bin/envoy", "configPath": "/etc/istio/proxy", "statusPort": 15020,
  "proxyAdminPort": 15000, "discoveryAddress": "127.0.0.1:15012", "terminationDrainDuration": "3s"}`
	field := func(name, path string) obj {
		return obj{"name": name, "valueFrom": obj{"fieldRef": obj{"fieldPath": path}}}
	}
	return obj{
		"name": "istio-proxy", "image": imgAgent, "imagePullPolicy": "Never",
		"args": []any{"proxy", "sidecar"},
		"env": []any{
			field("POD_NAME", "metadata.name"), field("POD_NAMESPACE", "metadata.namespace"), field("INSTANCE_IP", "status.podIP"),
			obj{"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}, obj{"name": "HOME", "value": "/tmp"},
			obj{"name": "PROXY_CONFIG", "value": pc},
		},
	}
}

// injected is a variant with istio-proxy added, and the app exiting code.
func injected(code int, proxy func() obj) variant {
	return variant{
		env: map[string]map[string]string{"app": {"APP_EXIT": strconv.Itoa(code)}},
		edit: func(spec obj) {
			spec["containers"] = append(spec["containers"].([]any), proxy())
		},
	}
}

// sidecar is the istio-proxy the tests of 01 run: the real pilot-agent
// where its image was built, else the fake's.
func sidecar() func() obj {
	if agentImage {
		return realIstioProxy
	}
	return istioProxy
}

// job is the part of a Job's status the tests read.
type job struct {
	Status struct {
		Succeeded, Failed int
		Conditions        []struct{ Type, Status, Reason string }
	}
}

// waitJob waits, bounded, until the Job has a condition of one of types
// (Complete, Failed) and returns it.
func waitJob(t *testing.T, k kube, name string, timeout time.Duration) (job, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := k.kubectl(nil, "get", "job", name, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var j job
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatal(err)
		}
		for _, c := range j.Status.Conditions {
			if (c.Type == "Complete" || c.Type == "Failed") && c.Status == "True" {
				return j, c.Type + "/" + c.Reason
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not done after %v: %+v", name, timeout, j.Status)
		}
		time.Sleep(500 * time.Millisecond) // polling the Job controller's status
	}
}

// jobPods lists the Job's pods as JSON objects.
func jobPods(t *testing.T, k kube, jobName string) []Pod {
	t.Helper()
	out, err := k.kubectl(nil, "get", "pods", "-l", "job-name="+jobName, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []Pod }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// TestExample01IstioJob runs 01's Job with an injected istio-proxy: when
// the app exits, the wrapper stops the proxy and the pod ends with the
// app's exit code. Exit 0: the Job completes, and the termination message
// is readable with kubectl's jsonpath. Exit 3 (restartPolicy Never,
// NEVER_KILL_ISTIO_ON_FAILURE unset): each pod ends Failed with the proxy
// stopped, and the Job retries until backoffLimit (1 here instead of 3:
// each retry waits the controller's back-off, 10s then 20s). istio-proxy
// is the real pilot-agent where it was built; the success runs with the
// fake's status port too, which checks the fake against it.
func TestExample01IstioJob(t *testing.T) {
	t.Parallel()
	needNode(t)
	for _, tc := range []struct {
		name  string
		proxy func() obj
	}{{"success with the fake's pilot-agent", istioProxy}, {"success with the real pilot-agent", realIstioProxy}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !agentImage && tc.name == "success with the real pilot-agent" {
				t.Skip("no real pilot-agent image (see the e2e line at start-up); the fake's ran")
			}
			k := namespace(t)
			injected(0, tc.proxy).apply(t, k, "01-istio-job-cronjob/job.yaml")
			j, cond := waitJob(t, k, "db-migrate", 2*time.Minute)
			pods := jobPods(t, k, "db-migrate")
			if cond != "Complete/CompletionsReached" || j.Status.Succeeded != 1 || len(pods) != 1 {
				for _, p := range pods {
					out, _ := k.kubectl(nil, "logs", p.Metadata.Name, "-c", "istio-proxy", "--tail=30")
					t.Logf("istio-proxy of %s:\n%s", p.Metadata.Name, out)
				}
				t.Fatalf("job got %s %+v with %d pods, want Complete with one pod", cond, j.Status, len(pods))
			}
			p := pods[0]
			checkExits(t, &p, map[string]int{"app": 0, "istio-proxy": 0})
			msg, err := k.kubectl(nil, "get", "pod", p.Metadata.Name, "-o", `jsonpath={.status.containerStatuses[?(@.name=="app")]..terminated.message}`)
			if err != nil || !strings.Contains(msg, "envoy-lifecycle exit 0: app exited") {
				t.Errorf("termination message via jsonpath got %q (%v)", msg, err)
			}
			all, _ := k.kubectl(nil, "get", "pod", p.Metadata.Name, "-o", "jsonpath={..terminated.message}")
			t.Logf("kubectl get pod -o jsonpath='{..terminated.message}': %s", all)
			logs, err := k.kubectl(nil, "logs", p.Metadata.Name, "-c", "app")
			if err != nil || !strings.Contains(logs, "istio proxy told to quit") {
				t.Errorf("app's log got %v:\n%s", err, logs)
			}
			proxyLogs, _ := k.kubectl(nil, "logs", p.Metadata.Name, "-c", "istio-proxy")
			if !strings.Contains(proxyLogs, "quitquitquit") {
				t.Errorf("istio-proxy's log does not show the /quitquitquit:\n%s", proxyLogs)
			}
		})
	}
	t.Run("failure retried until backoffLimit", func(t *testing.T) {
		t.Parallel()
		k := namespace(t)
		v := injected(3, sidecar())
		v.apply(t, k, "01-istio-job-cronjob/job.yaml")
		if out, err := k.kubectl([]byte(`{"spec":{"backoffLimit":1}}`), "patch", "job", "db-migrate", "--type=merge", "--patch-file=/dev/stdin"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		j, cond := waitJob(t, k, "db-migrate", 3*time.Minute)
		if cond != "Failed/BackoffLimitExceeded" || j.Status.Failed != 2 {
			t.Errorf("job got %s %+v, want Failed/BackoffLimitExceeded after 2 pods", cond, j.Status)
		}
		for _, p := range jobPods(t, k, "db-migrate") {
			if p.Status.Phase != "Failed" {
				t.Errorf("pod %s is %s, want Failed", p.Metadata.Name, p.Status.Phase)
			}
			checkExits(t, &p, map[string]int{"app": 3, "istio-proxy": 0})
		}
	})
	t.Run("cronjob runs once", func(t *testing.T) {
		t.Parallel()
		k := namespace(t)
		injected(0, sidecar()).apply(t, k, "01-istio-job-cronjob/cronjob.yaml")
		// The schedule is nightly: run it now, as `kubectl create job
		// --from` does, from the CronJob's own template.
		if out, err := k.kubectl(nil, "create", "job", "report-now", "--from=cronjob/nightly-report"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		j, cond := waitJob(t, k, "report-now", 2*time.Minute)
		if cond != "Complete/CompletionsReached" || j.Status.Succeeded != 1 {
			t.Errorf("job got %s %+v, want Complete", cond, j.Status)
		}
		for _, p := range jobPods(t, k, "report-now") {
			checkExits(t, &p, map[string]int{"app": 0, "istio-proxy": 0})
		}
	})
	t.Run("cronjob failure restarts in the pod until backoffLimit", func(t *testing.T) {
		t.Parallel()
		k := namespace(t)
		injected(1, sidecar()).apply(t, k, "01-istio-job-cronjob/cronjob.yaml")
		if out, err := k.kubectl(nil, "create", "job", "report-now", "--from=cronjob/nightly-report"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		w := watchPods(t, k, "job-name=report-now")
		// NEVER_KILL_ISTIO_ON_FAILURE with OnFailure: the app restarts in the
		// same pod while istio-proxy keeps running.
		w.until(t, "the app restarted beside a running istio-proxy", 2*time.Minute, func(pods map[string]*Pod, _ map[string]time.Time) *Pod {
			for _, p := range pods {
				app, _ := p.container("app")
				proxy, _ := p.container("istio-proxy")
				if app.RestartCount >= 1 && proxy.State.Running != nil && proxy.RestartCount == 0 {
					return p
				}
			}
			return nil
		})
		_, cond := waitJob(t, k, "report-now", 3*time.Minute)
		if cond != "Failed/BackoffLimitExceeded" {
			t.Errorf("job got %s, want Failed/BackoffLimitExceeded", cond)
		}
		w.mu.Lock()
		n := len(w.pods)
		w.mu.Unlock()
		if n != 1 {
			t.Errorf("the job made %d pods, want 1: OnFailure retries in the pod", n)
		}
	})
}
