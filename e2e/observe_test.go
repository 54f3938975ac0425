package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// api GETs a path of the API server with the admin's certificate; a
// streaming GET lives as long as ctx.
func (n *node) api(ctx context.Context, path string) (*http.Response, error) {
	cert, err := tlsClientCert(n.path("pki/admin.crt"), n.path("pki/admin.key"))
	if err != nil {
		return nil, err
	}
	c := &http.Client{Transport: adminTransport(n.path("pki/ca.crt"), cert)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiServer+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return resp, nil
}

// Pod is the part of a pod object the tests read.
type Pod struct {
	Metadata struct {
		Name              string            `json:"name"`
		UID               string            `json:"uid"`
		Labels            map[string]string `json:"labels"`
		DeletionTimestamp *time.Time        `json:"deletionTimestamp"`
	} `json:"metadata"`
	Status struct {
		Phase                 string                          `json:"phase"`
		PodIP                 string                          `json:"podIP"`
		Conditions            []struct{ Type, Status string } `json:"conditions"`
		ContainerStatuses     []ContainerStatus               `json:"containerStatuses"`
		InitContainerStatuses []ContainerStatus               `json:"initContainerStatuses"`
	} `json:"status"`
}

// ContainerStatus is one container's status.
type ContainerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int    `json:"restartCount"`
	State        struct {
		Running    *struct{ StartedAt time.Time } `json:"running"`
		Terminated *Terminated                    `json:"terminated"`
	} `json:"state"`
	LastState struct {
		Terminated *Terminated `json:"terminated"`
	} `json:"lastState"`
}

// Terminated is a container's end.
type Terminated struct {
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// container returns the named container's status, init containers too.
func (p *Pod) container(name string) (ContainerStatus, bool) {
	for _, c := range append(append([]ContainerStatus(nil), p.Status.ContainerStatuses...), p.Status.InitContainerStatuses...) {
		if c.Name == name {
			return c, true
		}
	}
	return ContainerStatus{}, false
}

func (p *Pod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// podWatch follows the pods matching a label selector from the API server.
type podWatch struct {
	mu      sync.Mutex
	pods    map[string]*Pod // by name, the latest seen
	deleted map[string]time.Time
	// terminating is when each pod was first seen with a deletion
	// timestamp.
	terminating map[string]time.Time
	changed     chan struct{} // closed and replaced on every change
	cancel      context.CancelFunc
	err         error // why the watch ended
	done        chan struct{}
}

// watchPods follows the pods of selector in the namespace until
// the test ends.
func watchPods(t *testing.T, k kube, selector string) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &podWatch{pods: map[string]*Pod{}, deleted: map[string]time.Time{}, terminating: map[string]time.Time{}, changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		err := k.watch(ctx, "/api/v1/namespaces/"+k.ns+"/pods?labelSelector="+url.QueryEscape(selector), func(typ string, obj json.RawMessage) error {
			var p Pod
			if err := json.Unmarshal(obj, &p); err != nil {
				return err
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			w.pods[p.Metadata.Name] = &p
			if _, ok := w.terminating[p.Metadata.Name]; !ok && p.Metadata.DeletionTimestamp != nil {
				w.terminating[p.Metadata.Name] = time.Now()
			}
			if typ == "DELETED" {
				w.deleted[p.Metadata.Name] = time.Now()
			}
			close(w.changed)
			w.changed = make(chan struct{})
			return nil
		})
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// watch follows a watch of path (a list URL) until ctx ends, calling
// handle for each event. A watch the API server refuses because its cache
// lags ("Too large resource version", under load) is opened again.
func (k kube) watch(ctx context.Context, path string, handle func(typ string, obj json.RawMessage) error) error {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for {
		// resourceVersion=0: start from the server's cache as it is, with an
		// ADDED event for each object, instead of a consistent read the
		// cache may lag behind.
		resp, err := k.api(ctx, path+sep+"watch=1&resourceVersion=0")
		if err != nil {
			return err
		}
		retry, err := func() (bool, error) {
			defer resp.Body.Close()
			dec := json.NewDecoder(resp.Body)
			for {
				var ev struct {
					Type   string          `json:"type"`
					Object json.RawMessage `json:"object"`
				}
				if err := dec.Decode(&ev); err != nil {
					return false, err
				}
				if ev.Type == "ERROR" {
					return strings.Contains(string(ev.Object), "ResourceVersionTooLarge"), fmt.Errorf("watch error: %s", ev.Object)
				}
				if err := handle(ev.Type, ev.Object); err != nil {
					return false, err
				}
			}
		}()
		if !retry || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Second) // the server's retryAfterSeconds
	}
}

// until waits, bounded, for cond over the pods seen so far; it returns the
// pod cond chose.
func (w *podWatch) until(t *testing.T, what string, timeout time.Duration, cond func(pods map[string]*Pod, deleted map[string]time.Time) *Pod) *Pod {
	t.Helper()
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		p := cond(w.pods, w.deleted)
		ch := w.changed
		w.mu.Unlock()
		if p != nil {
			return p
		}
		select {
		case <-ch:
		case <-w.done:
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			t.Fatalf("the pod watch ended while waiting for %s: %v", what, err)
		case <-deadline:
			w.mu.Lock()
			var s []string
			for name, p := range w.pods {
				s = append(s, fmt.Sprintf("%s %s ready=%v %+v", name, p.Status.Phase, p.ready(), p.Status.ContainerStatuses))
			}
			w.mu.Unlock()
			t.Fatalf("timed out after %v waiting for %s; pods: %s", timeout, what, strings.Join(s, "; "))
		}
	}
}

// readyPod waits for a Ready pod and returns it.
func (w *podWatch) readyPod(t *testing.T) *Pod {
	t.Helper()
	return w.until(t, "a Ready pod", 90*time.Second, func(pods map[string]*Pod, deleted map[string]time.Time) *Pod {
		for name, p := range pods {
			if _, gone := deleted[name]; !gone && p.Metadata.DeletionTimestamp == nil && p.ready() {
				return p
			}
		}
		return nil
	})
}

// gone waits until the pod is deleted from the API and returns its last
// state.
func (w *podWatch) gone(t *testing.T, name string, timeout time.Duration) *Pod {
	t.Helper()
	return w.until(t, "pod "+name+" to be gone", timeout, func(pods map[string]*Pod, deleted map[string]time.Time) *Pod {
		if _, ok := deleted[name]; ok {
			return pods[name]
		}
		return nil
	})
}

// logLine is one line of a container's log, with the kubelet's timestamp.
type logLine struct {
	at        time.Time
	container string
	text      string
}

// podLogs follows the logs of a pod's containers until they exit.
type podLogs struct {
	mu    sync.Mutex
	lines []logLine
	wg    sync.WaitGroup
}

// followLogs streams the logs of the named containers of pod, from the
// start, until each container ends.
func followLogs(t *testing.T, k kube, pod string, containers ...string) *podLogs {
	t.Helper()
	l := &podLogs{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	for _, c := range containers {
		resp, err := k.api(ctx, fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/log?container=%s&follow=true&timestamps=true", k.ns, pod, c))
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer resp.Body.Close()
			s := bufio.NewScanner(resp.Body)
			s.Buffer(make([]byte, 1<<20), 1<<20)
			for s.Scan() {
				ts, text, _ := strings.Cut(s.Text(), " ")
				at, _ := time.Parse(time.RFC3339Nano, ts)
				l.mu.Lock()
				l.lines = append(l.lines, logLine{at: at, container: c, text: text})
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// wait waits, bounded, for every container's stream to end.
func (l *podLogs) wait(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the containers' logs never ended")
	}
}

// all is every line, in the kubelet's time order.
func (l *podLogs) all() []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]logLine(nil), l.lines...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// first is the first line of container containing s.
func (l *podLogs) first(container, s string) (logLine, bool) {
	for _, x := range l.all() {
		if x.container == container && strings.Contains(x.text, s) {
			return x, true
		}
	}
	return logLine{}, false
}

func (l *podLogs) String() string {
	var b strings.Builder
	for _, x := range l.all() {
		fmt.Fprintf(&b, "%s %-16s %s\n", x.at.Format("15:04:05.000"), x.container, x.text)
	}
	return b.String()
}

// inOrder fails unless each (container, text) step appears in container's
// log after the step before it (by the kubelet's timestamps).
// logSkew is how far a later step's line may carry an earlier time: two
// processes (or a container's stdout and stderr) log the two ends of one
// exchange at once, the fake after its answer and the client on receiving
// it, and kubelet timestamps each stream as it reads it.
const logSkew = 50 * time.Millisecond

func (l *podLogs) inOrder(t *testing.T, steps ...[2]string) {
	t.Helper()
	var last time.Time
	lastName := "the start"
	for _, s := range steps {
		var found *logLine
		for _, x := range l.all() {
			if x.container == s[0] && strings.Contains(x.text, s[1]) && !x.at.Before(last.Add(-logSkew)) {
				found = &x
				break
			}
		}
		if found == nil {
			t.Errorf("no %s line %q after %s", s[0], s[1], lastName)
			return
		}
		last, lastName = found.at, fmt.Sprintf("%s %q", s[0], s[1])
	}
}

// event is one Kubernetes event of a pod.
type event struct {
	Reason, Message string
	Count           int
}

// podEvents lists the events of the pod named name.
func (k kube) podEvents(t *testing.T, name string) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := k.api(ctx, "/api/v1/namespaces/"+k.ns+"/events?fieldSelector="+url.QueryEscape("involvedObject.name="+name))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Items []event }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}
