// Command testapp is the app of the examples' pods on the real node, where
// the manifests run /app: "serve --listen=ADDR" serves HTTP until SIGTERM
// (lbsim.ServeApp: it prints "ready", then one "term ..." line on SIGTERM);
// any other command (migrate, report, backfill) prints what it runs and
// exits with $APP_EXIT (default 0), as a batch job would.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"envoy-lifecycle/lbsim"
)

// work is how long each request takes: long enough that a request cut by a
// stop that is not graceful is seen in flight.
const work = 20 * time.Millisecond

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp serve --listen=ADDR | testapp JOB [flags]")
		os.Exit(2)
	}
	if os.Args[1] == "serve" {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		listen := fs.String("listen", "", "address to serve")
		if err := fs.Parse(os.Args[2:]); err != nil || *listen == "" {
			fmt.Fprintf(os.Stderr, "testapp serve: --listen=%q: want host:port\n", *listen)
			os.Exit(2)
		}
		os.Exit(lbsim.ServeApp(*listen, work, os.Stdout))
	}
	code := 0
	if v := os.Getenv("APP_EXIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 255 {
			fmt.Fprintf(os.Stderr, "testapp: APP_EXIT=%q: want an exit code, 0 to 255\n", v)
			os.Exit(2)
		}
		code = n
	}
	fmt.Printf("testapp %s: done, exiting %d\n", strings.Join(os.Args[1:], " "), code)
	os.Exit(code)
}
