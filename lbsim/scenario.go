package lbsim

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"envoy-lifecycle/envoyfake"
)

// Scenario is one rollout of one pod under load: a fake Envoy proxies to
// the app, the wrapper runs the app, a load balancer sends traffic, and the
// pod gets SIGTERM in the middle of it.
type Scenario struct {
	// Bin is the envoy-lifecycle binary.
	Bin string
	// App returns the app's argv for a ServeApp listening on addr.
	App func(addr string) []string
	// Env is the wrapper's environment; ENVOY_ADMIN_API is added.
	Env []string
	// LB is the load balancer; Target, Path and HealthPath are filled in.
	LB LB
}

// Result is what a Scenario saw.
type Result struct {
	Stats
	Term     TermLine // the app's SIGTERM report
	ExitCode int
	Stderr   string
}

// healthPath is where the fake answers like Envoy's health-check filter.
const healthPath = "/healthz/envoy"

// Run plays the scenario once. Every wait is bounded.
func (s Scenario) Run() (Result, error) {
	var res Result
	addr, err := FreePort()
	if err != nil {
		return res, err
	}
	e, err := envoyfake.Start(envoyfake.Options{Upstream: addr, HealthPath: healthPath})
	if err != nil {
		return res, err
	}
	defer e.Close()

	argv := s.App(addr)
	cmd := exec.Command(s.Bin, argv...)
	cmd.Env = append(s.Env, "ENVOY_ADMIN_API="+e.AdminURL())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	// One Wait, in one goroutine, whichever way Run returns.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		res.Stderr = stderr.String()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if l, err := nextLine(lines, 10*time.Second); err != nil || l != "ready" {
		return res, fmt.Errorf("app did not get ready: %q %v", l, err)
	}

	lb := s.LB
	lb.Target, lb.Path, lb.HealthPath = e.ListenerAddr(), "/work", healthPath
	lb.StopOnFailure = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flowing := make(chan struct{})
	done := make(chan Stats, 1)
	go func() { done <- lb.Run(ctx, flowing) }()
	select {
	case <-flowing:
	case <-time.After(10 * time.Second):
		return res, fmt.Errorf("no request went through the fake")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return res, err
	}
	l, err := nextLine(lines, 30*time.Second)
	if err != nil {
		return res, fmt.Errorf("app never got SIGTERM: %w", err)
	}
	if res.Term, err = ParseTermLine(l); err != nil {
		return res, err
	}
	select {
	case <-exited:
		res.ExitCode = cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("wrapper did not exit")
	}
	// The load stops by itself once the pod is out of rotation, or at its
	// first failure. Forwarding at once the pod never leaves rotation:
	// the load goes on against the stopped app until a request fails,
	// bounded, rather than being cut off at once, when a loaded machine
	// may not have sent a request into the gap at all.
	select {
	case res.Stats = <-done:
	case <-time.After(5 * time.Second):
		cancel()
		res.Stats = <-done
	}
	return res, nil
}

func nextLine(lines <-chan string, d time.Duration) (string, error) {
	select {
	case l, ok := <-lines:
		if !ok {
			return "", fmt.Errorf("stdout closed")
		}
		return l, nil
	case <-time.After(d):
		return "", fmt.Errorf("no line in %v", d)
	}
}
