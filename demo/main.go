// Command demo shows envoy-lifecycle's whole lifecycle against the built-in
// Envoy fake, with nothing else installed:
//
//	go run ./demo
//
// It builds envoy-lifecycle, starts a fake Envoy that turns LIVE after one
// second, and wraps a small app that prints two lines and exits 0, as a Job
// would. Watch stderr for the wrapper's lifecycle lines.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"envoy-lifecycle/envoyfake"
	"envoy-lifecycle/internal/dockerbuild"
)

const appMarker = "EL_DEMO_APP"

func main() {
	if os.Getenv(appMarker) == "1" {
		fmt.Println("app: hello from the wrapped app, pid", os.Getpid())
		fmt.Println("app: doing the Job's work, then exiting 0")
		return
	}
	os.Exit(run())
}

func run() int {
	dir, err := os.MkdirTemp("", "el-demo")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "envoy-lifecycle")
	fmt.Println("demo: building envoy-lifecycle")
	// As the Dockerfile builds it.
	build, err := dockerbuild.Command(".", bin, ".", nil)
	if err == nil {
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		err = build.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: cannot build:", err)
		return 1
	}
	e, err := envoyfake.Start(envoyfake.Options{LiveAfter: time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: cannot start the envoy fake:", err)
		return 1
	}
	defer e.Close()
	self, _ := os.Executable()
	fmt.Printf("demo: envoy fake admin at %s, LIVE in 1s\n", e.AdminURL())
	fmt.Printf("demo: running ENVOY_ADMIN_API=%s envoy-lifecycle -- app\n\n", e.AdminURL())
	cmd := exec.Command(bin, "--", self)
	cmd.Env = append(os.Environ(), appMarker+"=1", "ENVOY_ADMIN_API="+e.AdminURL())
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	fmt.Printf("\ndemo: envoy-lifecycle exited with code %d\n", cmd.ProcessState.ExitCode())
	select {
	case <-e.Quit():
		fmt.Println("demo: the envoy fake was told to quit, as a Job's sidecar must be")
	case <-time.After(2 * time.Second):
		fmt.Println("demo: the envoy fake was NOT told to quit")
		return 1
	}
	fmt.Println("demo: admin calls the fake saw, in order:")
	for _, r := range e.Requests() {
		if r.Path == "/server_info" {
			continue
		}
		fmt.Printf("  %s %s%s -> %d\n", r.Method, r.Path, query(r.RawQuery), r.Status)
	}
	if err != nil {
		return 1
	}
	return 0
}

func query(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}
