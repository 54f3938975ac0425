package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

// Rollout load: a steady rate of requests, each on a new connection, so
// every request is routed by kube-proxy's rules afresh.
const (
	rolloutRate    = 50 // requests per second
	sparseRate     = 2  // requests per second: gaps longer than the quiet window
	rolloutTimeout = 5 * time.Second
)

// TestRolloutThroughService runs example 02's Deployment (3 replicas)
// behind its ClusterIP Service, routed by kube-proxy in iptables mode, and
// sends requests at a steady rate through the Service during `kubectl
// rollout restart`, in four variants at once: the published fixed 5s
// drain delay, ENVOY_LIFECYCLE_DRAIN_DELAY=auto under steady and under
// sparse traffic, and ENVOY_LIFECYCLE_DRAIN=false (SIGTERM forwarded at
// once, Envoy quit at once). No drain may lose a request; without it some are
// lost, which shows the test can fail. For each old pod it reports when
// the drain began after SIGTERM and after the endpoint left the Service,
// and how long the pod took to go.
func TestRolloutThroughService(t *testing.T) {
	needNode(t)
	for _, tc := range []struct {
		name  string
		drain bool
		rate  int // requests per second
		// env and setEnv are the app container's variables, as in variant.
		env, setEnv map[string]string
	}{
		{name: "drain fixed 5s", drain: true, rate: rolloutRate},
		{name: "drain auto", drain: true, rate: rolloutRate, setEnv: map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "auto"}},
		// Traffic so sparse that a quiet window passes between two
		// requests while kube-proxy still routes to the pod.
		{name: "drain auto sparse", drain: true, rate: sparseRate, setEnv: map[string]string{"ENVOY_LIFECYCLE_DRAIN_DELAY": "auto"}},
		{name: "no drain", rate: rolloutRate, env: map[string]string{"ENVOY_LIFECYCLE_DRAIN": "false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// At once: a node serves many rollouts, and the run is shorter.
			t.Parallel()
			k := namespace(t)
			v := variant{
				envoyArgs: map[string][]string{"envoy": fakeEnvoy("127.0.0.1:9901", "127.0.0.1:8081")},
				env:       map[string]map[string]string{"app": tc.env},
				setEnv:    map[string]map[string]string{"app": tc.setEnv},
				// The published requests (350m a pod) fit five pods on the
				// 2-core node, not four rollouts' surge and terminating
				// pods; requests only place pods, so dropping them changes
				// nothing else.
				edit: func(spec obj) {
					for _, c := range spec["containers"].([]any) {
						delete(c.(obj), "resources")
					}
				},
			}
			v.apply(t, k, "02-envoy-sidecar-deployment/envoy-config.yaml")
			v.apply(t, k, "02-envoy-sidecar-deployment/deployment.yaml")
			if out, err := k.kubectl(nil, "rollout", "status", "deployment/web", "--timeout=120s"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			ip, err := k.kubectl(nil, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
			if err != nil {
				t.Fatal(err)
			}
			target := "http://" + strings.TrimSpace(ip) + ":80/work"
			waitProgrammed(t, strings.TrimSpace(ip))
			w := watchPods(t, k, "app.kubernetes.io/name=web")
			eps := watchEndpoints(t, k, "web")
			before := programmingLatency(t)

			ld := startSteadyLoad(t, target, tc.rate)
			// Let requests flow through every pod before the rollout.
			time.Sleep(2 * time.Second) // a steady state to compare with, not a synchronisation
			old := map[string]bool{}
			w.until(t, "the 3 pods in the watch", 30*time.Second, func(pods map[string]*Pod, _ map[string]time.Time) *Pod {
				for name, p := range pods {
					if p.ready() {
						old[name] = true
					}
				}
				if len(old) == 3 {
					return p0(pods)
				}
				return nil
			})
			logs := map[string]*podLogs{}
			for name := range old {
				logs[name] = followLogs(t, k, name, "app")
			}
			start := time.Now()
			if out, err := k.kubectl(nil, "rollout", "restart", "deployment/web"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if out, err := k.kubectl(nil, "rollout", "status", "deployment/web", "--timeout=180s"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			// Until every old pod is gone: the last requests they hold count.
			for name := range old {
				w.gone(t, name, 90*time.Second)
			}
			sent, failed, fails := ld.stop()
			took := time.Since(start)
			after := programmingLatency(t)
			for _, l := range logs {
				l.wait(t)
			}

			t.Logf("rollout (%s, %d/s): %d requests sent through the Service over %v, %d failed (first ones: %s); kube-proxy programming latency: %s; per old pod: %s",
				tc.name, tc.rate, sent, took.Round(100*time.Millisecond), failed, fails, after.since(before), timelines(t, w, eps, logs, tc.drain))
			if sent < int64(float64(tc.rate)*took.Seconds()/2) {
				t.Errorf("only %d requests sent in %v", sent, took)
			}
			if tc.drain && failed != 0 {
				t.Errorf("%d of %d requests failed with the drain (first ones: %s), want none", failed, sent, fails)
			}
			if !tc.drain && failed == 0 {
				t.Errorf("no request failed with ENVOY_LIFECYCLE_DRAIN=false (of %d): the test cannot tell the drain's effect", sent)
			}
		})
	}
}

// timelines describes each old pod's termination: when its endpoint left
// the Service, when the drain began (the wrapper's "listeners draining"),
// both after SIGTERM (the wrapper's "termination signal" line), when the
// wrapper told Envoy to quit, and when the pod was gone after the watch
// saw it terminating. Times from the kubelet's log stamps and from the
// watches share the host's clock.
func timelines(t *testing.T, w *podWatch, e *endpointWatch, logs map[string]*podLogs, drain bool) string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	var s []string
	for name, l := range logs {
		term, ok := w.terminating[name]
		gone, ok2 := w.deleted[name]
		nr, ok3 := e.notReady[name]
		if !ok || !ok2 || !ok3 {
			s = append(s, name+": not seen terminating, gone and out of the Service")
			continue
		}
		line := fmt.Sprintf("endpoint out %s after terminating, gone after %s", ms(nr.Sub(term)), ms(gone.Sub(term)))
		if drain {
			sig, ok := l.first("app", "termination signal")
			d, ok2 := l.first("app", "listeners draining")
			if !ok || !ok2 {
				t.Errorf("%s: no termination signal or no drain in the app's log:\n%s", name, l)
			} else {
				line += fmt.Sprintf(", drain began %s after SIGTERM (%s after the endpoint left)", ms(d.at.Sub(sig.at)), ms(d.at.Sub(nr)))
				if q, ok := l.first("app", "envoy told to quit"); ok {
					line += fmt.Sprintf(", envoy quit %s after SIGTERM", ms(q.at.Sub(sig.at)))
				}
			}
		}
		s = append(s, line)
	}
	sort.Strings(s)
	return strings.Join(s, "; ")
}

// waitProgrammed waits, bounded, until kube-proxy has rules that send the
// Service's ClusterIP to its endpoints. Why not send requests until one
// goes through: a SYN sent before the rules exist leaves the host
// un-NATed, and its conntrack entry (120s in SYN_SENT) keeps any later
// connection that reuses its source port un-NATed too, which then fails
// with "no route to host" in the middle of the rollout.
func waitProgrammed(t *testing.T, clusterIP string) {
	t.Helper()
	want := "-d " + clusterIP + "/32 "
	err := testproc.Poll(func() (bool, string) {
		out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES").CombinedOutput()
		if err != nil {
			return false, fmt.Sprintf("iptables: %v: %s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, want) && strings.Contains(l, "-j KUBE-SVC-") {
				return true, ""
			}
		}
		return false, "no KUBE-SERVICES rule for " + clusterIP
	})
	if err != nil {
		t.Fatal(err)
	}
}

// p0 is any pod of pods.
func p0(pods map[string]*Pod) *Pod {
	for _, p := range pods {
		return p
	}
	return nil
}

// steadyLoad sends requests at a steady rate, each on its own
// connection, and counts failures (errors and non-200 answers).
type steadyLoad struct {
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	sent, failed atomic.Int64
	mu           sync.Mutex
	fails        []string // the first few failures, with their times
}

func startSteadyLoad(t *testing.T, target string, rate int) *steadyLoad {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	l := &steadyLoad{cancel: cancel}
	t.Cleanup(cancel)
	client := &http.Client{Timeout: rolloutTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.wg.Add(1)
			l.sent.Add(1)
			go func() {
				defer l.wg.Done()
				resp, err := client.Get(target)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.fails) < 5 {
						l.fails = append(l.fails, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					}
					l.mu.Unlock()
				}
			}()
		}
	}()
	// The first request must go through before anything else happens.
	deadline := time.Now().Add(30 * time.Second)
	for l.sent.Load()-l.failed.Load() < 5 {
		if time.Now().After(deadline) {
			l.mu.Lock()
			t.Fatalf("no request went through %s: %s", target, strings.Join(l.fails, "; "))
		}
		time.Sleep(50 * time.Millisecond) // polling the counters the workers update
	}
	l.failed.Store(0) // failures before the Service answered do not count
	l.mu.Lock()
	l.fails = nil
	l.mu.Unlock()
	return l
}

// stop ends the load; fails are the first few failures.
func (l *steadyLoad) stop() (sent, failed int64, fails string) {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent.Load(), l.failed.Load(), strings.Join(l.fails, "; ")
}

// endpointWatch records when each pod's endpoint stopped being ready in
// the Service's EndpointSlices (or left them).
type endpointWatch struct {
	mu       sync.Mutex
	notReady map[string]time.Time // pod name → first seen not ready or gone
}

func watchEndpoints(t *testing.T, k kube, service string) *endpointWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &endpointWatch{notReady: map[string]time.Time{}}
	done := make(chan struct{})
	ready := map[string]bool{} // pods ever seen ready
	go func() {
		defer close(done)
		k.watch(ctx, "/apis/discovery.k8s.io/v1/namespaces/"+k.ns+"/endpointslices?labelSelector="+url.QueryEscape("kubernetes.io/service-name="+service), func(_ string, obj json.RawMessage) error {
			var slice struct {
				Endpoints []struct {
					Conditions struct {
						Ready *bool `json:"ready"`
					} `json:"conditions"`
					TargetRef struct {
						Name string `json:"name"`
					} `json:"targetRef"`
				} `json:"endpoints"`
			}
			if err := json.Unmarshal(obj, &slice); err != nil {
				return err
			}
			now := time.Now()
			present := map[string]bool{}
			e.mu.Lock()
			defer e.mu.Unlock()
			for _, ep := range slice.Endpoints {
				name := ep.TargetRef.Name
				present[name] = true
				if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
					ready[name] = true
				} else if _, ok := e.notReady[name]; !ok && ready[name] {
					e.notReady[name] = now
				}
			}
			for name := range ready {
				if _, ok := e.notReady[name]; !ok && !present[name] {
					e.notReady[name] = now
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// latency is kube-proxy's network programming latency histogram: how long
// from an endpoint's change in the API to the iptables rules for it.
type latency struct{ sum, count float64 }

func (a latency) since(b latency) string {
	n := a.count - b.count
	if n <= 0 {
		return "no sample"
	}
	return fmt.Sprintf("mean %.3fs over %.0f syncs", (a.sum-b.sum)/n, n)
}

func programmingLatency(t *testing.T) latency {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var l latency
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		name, _, _ := strings.Cut(f[0], "{") // {ip_family="IPv4"}
		switch name {
		case "kubeproxy_network_programming_duration_seconds_sum":
			l.sum = v
		case "kubeproxy_network_programming_duration_seconds_count":
			l.count = v
		}
	}
	return l
}
