package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"envoy-lifecycle/inject"
	"envoy-lifecycle/yamledit/edittest"
)

// webDeployment is a Deployment of an app without a command beside
// Envoy; inject's tests use it too.
var webDeployment = func() string {
	b, err := os.ReadFile("inject/testdata/web-deployment.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// files writes manifest.yaml (and config.yaml when config is not empty)
// into a new directory and returns their paths.
func files(t *testing.T, manifest, config string) (dir, mpath, cpath string) {
	t.Helper()
	dir = t.TempDir()
	mpath = filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(mpath, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		cpath = filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cpath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, mpath, cpath
}

// dirState lists a directory's files and contents.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		config   string
		args     []string // CONFIG and MANIFEST stand for the files
		code     int
		want     []string // each must be in stderr
	}{
		{
			name: "unknown kind in config", manifest: webDeployment,
			config: "deployment:\n  web:\n    web: [a]\ndeploymnet:\n  web:\n    web: [a]\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitUsage,
			want: []string{`config.yaml:4: unknown kind "deploymnet" (valid: cronjob, daemonset, deployment, job, pod, replicaset, replicationcontroller, statefulset)`},
		},
		{
			name: "config command not a list", manifest: webDeployment,
			config: "deployment:\n  web:\n    web: /bin/graceful.sh\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitUsage,
			want: []string{`config.yaml:3: deployment "web" container "web": the preStop command must be a list such as ["/bin/sh", "-c", "..."], got the string "/bin/graceful.sh"`},
		},
		{
			name: "config resource not a mapping", manifest: webDeployment,
			config: "deployment:\n  - web\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitUsage,
			want: []string{`config.yaml:2: deployment: want resource names, each mapping containers to a preStop command, got a list`},
		},
		{
			name: "config is a list", manifest: webDeployment,
			config: "- deployment\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitUsage,
			want: []string{`config.yaml:1: the config must map kinds to resources`},
		},
		{
			name: "config not YAML", manifest: webDeployment,
			config: "deployment:\n  web:\n    web: [\"/bin/sh\", \"-c\"\n    envoy: [x]\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitUsage,
			want: []string{`config.yaml:3: not valid YAML: did not find expected ',' or ']'`},
		},
		{
			name: "config empty", manifest: webDeployment, config: "# nothing\n",
			args: []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitUsage,
			want: []string{`config.yaml: the config is empty`},
		},
		{
			name: "manifest not YAML", manifest: webDeployment + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   bad: indent\n",
			config: "deployment:\n  web:\n    web: [a]\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitManifest,
			want: []string{`manifest.yaml:24: not valid YAML: mapping values are not allowed in this context`},
		},
		{
			name:     "manifest duplicate key",
			manifest: strings.Replace(webDeployment, "  selector:", "  replicas: 1\n  replicas: 2\n  selector:", 1),
			config:   "deployment:\n  web:\n    web: [a]\n",
			args:     []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitManifest,
			want: []string{`manifest.yaml:7: not valid YAML: mapping key "replicas" already defined at line 6`},
		},
		{
			name: "missing resource", manifest: webDeployment,
			config: "deployment:\n  web:\n    web: [a]\n  api:\n    api: [b]\nstatefulset:\n  web:\n    web: [c]\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`config.yaml:4: deployment "api" is not in `, `config.yaml:7: statefulset "web" is not in `},
		},
		{
			name: "missing container", manifest: webDeployment,
			config: "deployment:\n  web:\n    web: [a]\n    app: [b]\n",
			args:   []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`config.yaml:4: deployment "web" (`, `manifest.yaml:1) has no container "app" (containers: web, envoy)`},
		},
		{
			name: "missing istio-proxy with --no-istio-stub", manifest: webDeployment,
			config: "deployment:\n  web:\n    istio-proxy: [a]\n",
			args:   []string{"--no-istio-stub", "-c", "CONFIG", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`config.yaml:3: deployment "web" (`, `has no container "istio-proxy" (containers: web, envoy); without --no-istio-stub inject adds an istio-proxy container`},
		},
		{
			name:     "istio-proxy stub with injection off",
			manifest: strings.Replace(webDeployment, "        app: web\n    spec:", "        app: web\n        sidecar.istio.io/inject: \"false\"\n    spec:", 1),
			config:   "deployment:\n  web:\n    istio-proxy: [a]\n",
			args:     []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`Istio injection is off for this pod`},
		},
		{
			name:     "istio-proxy native by annotation with --no-istio-stub",
			manifest: strings.Replace(webDeployment, "        app: web\n    spec:", "        app: web\n      annotations:\n        sidecar.istio.io/nativeSidecar: \"true\"\n    spec:", 1),
			config:   "deployment:\n  web:\n    istio-proxy: [a]\n",
			args:     []string{"--no-istio-stub", "-c", "CONFIG", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`config.yaml:3: deployment "web" (`, `has no container "istio-proxy" (containers: web, envoy); without --no-istio-stub inject adds an istio-proxy init container`},
		},
		{
			name:     "istio-proxy an init container that is not a native sidecar",
			manifest: strings.Replace(webDeployment, "    spec:\n      containers:\n", "    spec:\n      initContainers:\n      - name: istio-proxy\n        image: auto\n      containers:\n", 1),
			config:   "deployment:\n  web:\n    istio-proxy: [a]\n",
			args:     []string{"-c", "CONFIG", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`config.yaml:3: deployment "web" (`, `istio-proxy is an init container without restartPolicy: Always, which cannot have a preStop hook`},
		},
		{
			name: "preset without command", manifest: webDeployment,
			args: []string{"--preset", "envoy", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`manifest.yaml:15: deployment/web: container "web" has no command, so inject cannot tell what its image runs: write the image's ENTRYPOINT (and CMD) as command, or pass --entrypoint`},
		},
		{
			name:     "grace too short with --no-fix-grace",
			manifest: strings.Replace(webDeployment, "    spec:\n", "    spec:\n      terminationGracePeriodSeconds: 10\n", 1),
			args:     []string{"--preset", "envoy", "--entrypoint", "/web", "--no-fix-grace", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`manifest.yaml:14: deployment/web: terminationGracePeriodSeconds is 10, shorter than the drain budget, 28s (drain deadline 15s + stop timeout 10s + 3s to stop the proxy), plus a 2s margin: set it to 30 or more, or drop --no-fix-grace`},
		},
		{
			name:     "grace unset and too short with --no-fix-grace",
			manifest: webDeployment,
			args:     []string{"--preset", "shutdown-manager", "--drain-deadline", "40s", "--no-fix-grace", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`deployment/web: terminationGracePeriodSeconds is unset (30), shorter than the drain budget, 48s (hook deadline 40s + the manager's --shutdown-timeout 5s + 3s to exit), plus a 2s margin: set it to 50 or more`},
		},
		{
			name:     "containers not a list",
			manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    web:\n      image: web\n",
			args:     []string{"--preset", "istio", "MANIFEST"}, code: inject.ExitManifest,
			want: []string{`manifest.yaml:7: pod/p: containers: want a list, got a mapping`},
		},
		{
			name:     "bad drain deadline in env",
			manifest: strings.Replace(webDeployment, "        image: web:1\n", "        image: web:1\n        command: [/web]\n        env:\n        - name: ENVOY_LIFECYCLE_DRAIN_DEADLINE\n          value: \"15\"\n", 1),
			args:     []string{"--preset", "envoy", "MANIFEST"}, code: inject.ExitManifest,
			want: []string{`deployment/web: container "web": env ENVOY_LIFECYCLE_DRAIN_DEADLINE="15": not a duration`},
		},
		{
			name:     "no workload fits the preset",
			manifest: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: web\n    image: web\n",
			args:     []string{"--preset", "envoy", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`note: pod/p: skipped: no Envoy container`, `manifest.yaml: no workload fits --preset envoy`},
		},
		{
			name: "unknown --app-container", manifest: webDeployment,
			args: []string{"--preset", "envoy", "--app-container", "api", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`--app-container "api": no workload has such a container`},
		},
		{
			name:     "volume name taken",
			manifest: strings.Replace(webDeployment, "        image: envoyproxy/envoy:v1.31.2\n", "        image: envoyproxy/envoy:v1.31.2\n      volumes:\n      - name: envoy-lifecycle\n        configMap:\n          name: x\n", 1),
			args:     []string{"--preset", "envoy", "--entrypoint", "/web", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`deployment/web: volume "envoy-lifecycle" is already there and is not an emptyDir`},
		},
		{
			name:     "shutdown-manager volume name taken",
			manifest: strings.Replace(webDeployment, "        image: envoyproxy/envoy:v1.31.2\n", "        image: envoyproxy/envoy:v1.31.2\n      volumes:\n      - name: envoy-lifecycle-shutdown\n        configMap:\n          name: x\n", 1),
			args:     []string{"--preset", "shutdown-manager", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`deployment/web: volume "envoy-lifecycle-shutdown" is already there and is not an emptyDir`},
		},
		{
			name:     "shutdown-manager mount path taken",
			manifest: strings.Replace(webDeployment, "        image: envoyproxy/envoy:v1.31.2\n", "        image: envoyproxy/envoy:v1.31.2\n      - name: shutdown-manager\n        image: mgr:1\n        volumeMounts:\n        - {name: other, mountPath: /shutdown/}\n", 1),
			args:     []string{"--preset", "shutdown-manager", "MANIFEST"}, code: inject.ExitMismatch,
			want: []string{`container "shutdown-manager" already mounts volume "other" at /shutdown, where inject mounts "envoy-lifecycle-shutdown"`},
		},
		{
			name:     "alias in an edited field",
			manifest: "kind: List\nitems:\n- kind: Pod\n  metadata: {name: a}\n  spec: &spec\n    containers: [{name: web, command: [/web]}, {name: envoy}]\n- kind: Pod\n  metadata: {name: b}\n  spec: *spec\n",
			args:     []string{"--preset", "envoy", "MANIFEST"}, code: inject.ExitManifest,
			want: []string{`manifest.yaml:9: pod/b: spec: aliases (*spec) are not supported here`},
		},
		{
			name:     "not YAML in a later document",
			manifest: webDeployment + "---\nkind: Pod\nspec: {containers: [}\n",
			args:     []string{"--preset", "envoy", "MANIFEST"}, code: inject.ExitManifest,
			want: []string{`manifest.yaml:21: not valid YAML: did not find expected node content`},
		},
		// The command line.
		{name: "no arguments", code: inject.ExitUsage, want: []string{"give a config (-c FILE) or a preset (--preset envoy|istio|shutdown-manager)"}},
		{name: "no manifest", args: []string{"--preset", "envoy"}, code: inject.ExitUsage, want: []string{"want one manifest file (- for stdin), got 0"}},
		{name: "two manifests", manifest: webDeployment, args: []string{"--preset", "envoy", "MANIFEST", "MANIFEST"}, code: inject.ExitUsage, want: []string{"got 2"}},
		{name: "config and preset", manifest: webDeployment, config: "pod: {}\n", args: []string{"-c", "CONFIG", "--preset", "envoy", "MANIFEST"}, code: inject.ExitUsage, want: []string{"not both"}},
		{name: "unknown preset", manifest: webDeployment, args: []string{"--preset", "linkerd", "MANIFEST"}, code: inject.ExitUsage, want: []string{`--preset "linkerd": unknown preset (valid: envoy, istio, shutdown-manager)`}},
		{name: "unknown flag", manifest: webDeployment, args: []string{"--preset", "envoy", "--fix", "MANIFEST"}, code: inject.ExitUsage, want: []string{"flag provided but not defined: -fix"}},
		{name: "preset flag without preset", manifest: webDeployment, config: "pod: {}\n", args: []string{"-c", "CONFIG", "--entrypoint", "/x", "MANIFEST"}, code: inject.ExitUsage, want: []string{"--entrypoint needs --preset"}},
		{name: "bad admin port", manifest: webDeployment, args: []string{"--preset", "envoy", "--admin-port", "70000", "MANIFEST"}, code: inject.ExitUsage, want: []string{"--admin-port 70000: not a port"}},
		{name: "bad entrypoint", manifest: webDeployment, args: []string{"--preset", "envoy", "--entrypoint", "[1]", "MANIFEST"}, code: inject.ExitUsage, want: []string{`--entrypoint "[1]": not a JSON list of strings`}},
		{name: "stop timeout for shutdown-manager", manifest: webDeployment, args: []string{"--preset", "shutdown-manager", "--stop-timeout", "5s", "MANIFEST"}, code: inject.ExitUsage, want: []string{"--stop-timeout does not apply to --preset shutdown-manager"}},
		{name: "missing manifest", args: []string{"--preset", "envoy", "/nonexistent/manifest.yaml"}, code: inject.ExitNoInput, want: []string{"cannot read /nonexistent/manifest.yaml: no such file or directory"}},
		{name: "missing config", manifest: webDeployment, args: []string{"-c", "/nonexistent/config.yaml", "MANIFEST"}, code: inject.ExitNoInput, want: []string{"/nonexistent/config.yaml"}},
		{name: "output not writable", manifest: webDeployment, args: []string{"--preset", "envoy", "--entrypoint", "/web", "-o", "/nonexistent/out.yaml", "MANIFEST"}, code: inject.ExitCantCreate, want: []string{"cannot write /nonexistent/out.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, mpath, cpath := files(t, tc.manifest, tc.config)
			before := dirState(t, dir)
			var args []string
			for _, a := range tc.args {
				switch a {
				case "MANIFEST":
					a = mpath
				case "CONFIG":
					a = cpath
				}
				args = append(args, a)
			}
			var stdout, stderr bytes.Buffer
			code := runInject(args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code got %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr got:\n%s\nwant it to contain:\n%s", stderr.String(), w)
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout got %q, want nothing", stdout.String())
			}
			if after := dirState(t, dir); !equalState(before, after) {
				t.Errorf("the directory changed on error: before %v, after %v", keys(before), keys(after))
			}
		})
	}
}

func equalState(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestOverwriteInPlace(t *testing.T) {
	t.Parallel()
	dir, mpath, _ := files(t, webDeployment, "")
	var stdout, stderr bytes.Buffer
	if code := runInject([]string{"--preset", "envoy", "--entrypoint", "/web", mpath}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	got, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("- /envoy-lifecycle/envoy-lifecycle\n")) {
		t.Errorf("the manifest was not injected in place:\n%s", got)
	}
	if fi, err := os.Stat(mpath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode got %v (%v), want 0600 kept", fi.Mode(), err)
	}
	if st := dirState(t, dir); len(st) != 1 {
		t.Errorf("files left in the directory: %v, want only manifest.yaml", keys(st))
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout got %q, want nothing", stdout.String())
	}
}

func TestOutputFile(t *testing.T) {
	t.Parallel()
	dir, mpath, _ := files(t, webDeployment, "")
	out := filepath.Join(dir, "out.yaml")
	var stderr bytes.Buffer
	// Flags after the manifest, as the injector script's users type them.
	if code := runInject([]string{mpath, "--preset", "istio", "--entrypoint", "/web", "-o", out}, nil, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if b, _ := os.ReadFile(mpath); string(b) != webDeployment {
		t.Errorf("the input changed with -o")
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte("ISTIO_QUIT_API")) {
		t.Errorf("the output got %q (%v), want the injected manifest", b, err)
	}
}

// TestOutputNotARegularFile: -o /dev/null and -o to a named pipe are
// written directly (there is nothing to rename over), the directory is left
// clean; a directory is still refused.
func TestOutputNotARegularFile(t *testing.T) {
	t.Parallel()
	args := []string{"--preset", "envoy", "--entrypoint", "/web"}
	want, _, err := inject.Inject("m", []byte(webDeployment), inject.Options{Preset: "envoy", Entrypoint: []string{"/web"}, FixGrace: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("/dev/null", func(t *testing.T) {
		t.Parallel()
		if _, err := os.Stat(os.DevNull); err != nil {
			t.Skip(err)
		}
		dir, mpath, _ := files(t, webDeployment, "")
		before := dirState(t, dir)
		var stderr bytes.Buffer
		if code := runInject(append(args, "-o", os.DevNull, mpath), nil, &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
		}
		if !equalState(before, dirState(t, dir)) {
			t.Errorf("-o %s changed the manifest's directory", os.DevNull)
		}
		if fi, err := os.Stat(os.DevNull); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("%s is no longer a character device: %v %v", os.DevNull, fi.Mode(), err)
		}
	})
	t.Run("named pipe", func(t *testing.T) {
		t.Parallel()
		dir, mpath, _ := files(t, webDeployment, "")
		fifo := filepath.Join(t.TempDir(), "out.fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skip(err)
		}
		before := dirState(t, dir)
		read := make(chan []byte, 1)
		go func() {
			b, _ := os.ReadFile(fifo) // blocks until Main opens it
			read <- b
		}()
		var stderr bytes.Buffer
		if code := runInject(append(args, "-o", fifo, mpath), nil, &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
		}
		select {
		case got := <-read:
			if !bytes.Equal(got, want) {
				t.Errorf("the pipe got:\n%s\nwant:\n%s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("nothing read from the pipe")
		}
		if !equalState(before, dirState(t, dir)) {
			t.Errorf("-o FIFO changed the manifest's directory")
		}
	})
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		_, mpath, _ := files(t, webDeployment, "")
		var stderr bytes.Buffer
		if code := runInject(append(args, "-o", t.TempDir(), mpath), nil, &bytes.Buffer{}, &stderr); code != inject.ExitCantCreate {
			t.Errorf("exit code got %d, want %d; stderr:\n%s", code, inject.ExitCantCreate, stderr.String())
		}
		if !strings.Contains(stderr.String(), "not a regular file") {
			t.Errorf("stderr got %q, want it to say not a regular file", stderr.String())
		}
	})
}

func TestSymlinkTarget(t *testing.T) {
	t.Parallel()
	dir, mpath, _ := files(t, webDeployment, "")
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(mpath, link); err != nil {
		t.Skip(err)
	}
	if code := runInject([]string{"--preset", "envoy", "--entrypoint", "/web", link}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit code got %d, want 0", code)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced by a file")
	}
	if b, _ := os.ReadFile(mpath); !bytes.Contains(b, []byte("envoy-lifecycle-install")) {
		t.Errorf("the symlink's target was not injected")
	}
}

func TestStdinStdout(t *testing.T) {
	t.Parallel()
	want := injectFile(t, "inject/testdata/seed.input.yaml", "-c", "inject/testdata/seed.config.yaml")
	src, err := os.ReadFile("inject/testdata/seed.input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-c", "inject/testdata/seed.config.yaml", "-"},             // no -o: stdin goes to stdout
		{"-c", "inject/testdata/seed.config.yaml", "-o", "-", "-"},  // explicit
		{"--config", "inject/testdata/seed.config.yaml", "--", "-"}, // after --
	} {
		var stdout, stderr bytes.Buffer
		if code := runInject(args, bytes.NewReader(src), &stdout, &stderr); code != 0 {
			t.Fatalf("runInject(%q) exit code got %d, want 0; stderr:\n%s", args, code, stderr.String())
		}
		if !bytes.Equal(stdout.Bytes(), want) {
			t.Errorf("runInject(%q) stdout differs from the file run:\n%s", args, stdout.String())
		}
		if !strings.Contains(stderr.String(), "<stdin>") && strings.Contains(stderr.String(), "error") {
			t.Errorf("stderr got %q", stderr.String())
		}
	}
	// Config from stdin, manifest from a file.
	cfg, _ := os.ReadFile("inject/testdata/seed.config.yaml")
	var stdout bytes.Buffer
	if code := runInject([]string{"-c", "-", "-o", "-", "inject/testdata/seed.input.yaml"}, bytes.NewReader(cfg), &stdout, &bytes.Buffer{}); code != 0 || !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("config on stdin: exit code %d, output equal %v", code, bytes.Equal(stdout.Bytes(), want))
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	dir, mpath, _ := files(t, webDeployment, "")
	before := dirState(t, dir)
	var stdout, stderr bytes.Buffer
	if code := runInject([]string{"--dry-run", "--preset", "envoy", "--entrypoint", "/web", mpath}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if !equalState(before, dirState(t, dir)) {
		t.Errorf("--dry-run changed the directory")
	}
	diff := stdout.String()
	for _, want := range []string{
		"--- " + mpath + "\n+++ " + mpath + "\n@@ -11,8 +11,46 @@\n",
		"+      initContainers:\n+      - name: envoy-lifecycle-install\n",
		"+        command:\n+        - /envoy-lifecycle/envoy-lifecycle\n+        - --\n+        - /web\n",
		"       - name: envoy\n         image: envoyproxy/envoy:v1.31.2\n+        lifecycle:\n",
	} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff got:\n%s\nwant it to contain:\n%s", diff, want)
		}
	}
	// The diff applies to the input and gives the output.
	out, _, err := inject.Inject("m", []byte(webDeployment), inject.Options{Preset: "envoy", Entrypoint: []string{"/web"}, FixGrace: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := applyUnified(t, []byte(webDeployment), stdout.Bytes()); !bytes.Equal(got, out) {
		t.Errorf("the diff applied gives:\n%s\nwant:\n%s", got, out)
	}

	// Nothing to change: no diff.
	stdout.Reset()
	stderr.Reset()
	if code := runInject([]string{"--dry-run", "-c", "inject/testdata/seed.config.yaml", "inject/testdata/seed.golden.yaml"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "no changes") {
		t.Errorf("dry run of an injected file: stdout %q, stderr %q; want no diff and \"no changes\"", stdout.String(), stderr.String())
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if code := runInject([]string{"--help"}, nil, &stdout, &bytes.Buffer{}); code != 0 || !strings.Contains(stdout.String(), "--preset NAME") {
		t.Errorf("--help: exit code %d, stdout %q", code, stdout.String())
	}
}

// TestUntouched checks that documents inject does not change come out
// byte for byte, oddities included: CRLF lines, a BOM, "..." markers,
// a "--- |" document, blank lines, other kinds and a custom resource named
// Deployment.
func TestUntouched(t *testing.T) {
	t.Parallel()
	src := "\ufeff%YAML 1.2\n---\n# odd\r\nkind:   ConfigMap   # spaced\r\n\r\ndata: {a: \"1\"}\r\n...\n--- |\n  literal text\n---\napiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: web}]}}}\n---\n" + webDeployment
	out, _, err := inject.Inject("m", []byte(src), inject.Options{Preset: "envoy", Entrypoint: []string{"/web"}, FixGrace: true})
	if err != nil {
		t.Fatal(err)
	}
	head := strings.TrimSuffix(src, webDeployment)
	if !strings.HasPrefix(string(out), head) {
		t.Errorf("untouched documents changed:\n%q\nwant prefix:\n%q", out, head)
	}
	if !strings.Contains(string(out), "envoy-lifecycle-install") {
		t.Errorf("the Deployment was not injected")
	}
	// CRLF documents that change keep CRLF.
	crlf := strings.ReplaceAll(webDeployment, "\n", "\r\n")
	out, _, err = inject.Inject("m", []byte(crlf), inject.Options{Preset: "envoy", Entrypoint: []string{"/web"}, FixGrace: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(out), "\n") != strings.Count(string(out), "\r\n") {
		t.Errorf("a changed CRLF document got LF lines:\n%q", out)
	}
}

func TestInstall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stderr bytes.Buffer
	if code := runInstall([]string{dir}, nil, &stderr); code != 0 {
		t.Fatalf("exit code got %d, want 0; stderr %q", code, stderr.String())
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(exe)
	got, err := os.ReadFile(filepath.Join(dir, "envoy-lifecycle"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("the copy differs from the running executable (%v)", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "envoy-lifecycle")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode got %v (%v), want 0755", fi.Mode(), err)
	}
	if st := dirState(t, dir); len(st) != 1 {
		t.Errorf("files in the directory: %v, want only envoy-lifecycle", keys(st))
	}
	// Again: replaced, still one file.
	if code := runInstall([]string{dir}, nil, &stderr); code != 0 {
		t.Errorf("second install: exit code got %d, want 0", code)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, inject.ExitUsage},
		{[]string{dir, dir}, inject.ExitUsage},
		{[]string{"--help"}, inject.ExitOK}, // issue 12 item 7: help is not an error
		{[]string{filepath.Join(dir, "missing")}, inject.ExitCantCreate},
		{[]string{filepath.Join(dir, "envoy-lifecycle")}, inject.ExitCantCreate}, // a file, not a directory
	} {
		if code := runInstall(tc.args, &bytes.Buffer{}, &bytes.Buffer{}); code != tc.code {
			t.Errorf("runInstall(%q) exit code got %d, want %d", tc.args, code, tc.code)
		}
	}
}

// injectFile runs runInject on file with args plus "-o -" and returns
// stdout. It fails the test on a non-zero exit code.
func injectFile(t *testing.T, file string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	argv := append(append([]string{}, args...), "-o", "-", file)
	if code := runInject(argv, nil, &out, &errb); code != 0 {
		t.Fatalf("runInject(%q) got exit code %d, want 0; stderr:\n%s", argv, code, errb.String())
	}
	return out.Bytes()
}

// applyUnified applies a unified diff to a, to check that --dry-run's
// diff turns the input into the output.
func applyUnified(t testing.TB, a, diff []byte) []byte {
	t.Helper()
	if len(diff) == 0 {
		return a
	}
	src := edittest.Lines(a)
	lines := edittest.Lines(diff)
	if len(lines) < 2 || !bytes.HasPrefix(lines[0], []byte("--- ")) || !bytes.HasPrefix(lines[1], []byte("+++ ")) {
		t.Fatalf("no diff header in:\n%s", diff)
	}
	var out [][]byte
	pos := 0 // next line of src to copy
	var last *[]byte
	for i := 2; i < len(lines); i++ {
		l := lines[i]
		switch {
		case bytes.HasPrefix(l, []byte("@@ -")):
			f := strings.Fields(string(l))
			start, _, _ := strings.Cut(strings.TrimPrefix(f[1], "-"), ",")
			n, err := strconv.Atoi(start)
			if err != nil {
				t.Fatalf("bad hunk header %q", l)
			}
			if !strings.Contains(f[1], ",0") {
				n-- // lines from 1; an empty range names the line before
			}
			for pos < n {
				out = append(out, src[pos])
				pos++
			}
		case bytes.Equal(l, []byte("\\ No newline at end of file\n")):
			if last != nil {
				*last = bytes.TrimSuffix(*last, []byte("\n"))
			}
			continue
		case l[0] == ' ' || l[0] == '-':
			if pos >= len(src) || !bytes.Equal(bytes.TrimSuffix(src[pos], []byte("\n")), bytes.TrimSuffix(l[1:], []byte("\n"))) {
				t.Fatalf("hunk line %q does not match input line %d", l, pos+1)
			}
			if l[0] == ' ' {
				out = append(out, src[pos])
				last = &out[len(out)-1]
			} else {
				last = nil
			}
			pos++
			continue
		case l[0] == '+':
			out = append(out, append([]byte(nil), l[1:]...))
			last = &out[len(out)-1]
			continue
		default:
			t.Fatalf("unexpected diff line %q", l)
		}
		last = nil
	}
	out = append(out, src[pos:]...)
	return bytes.Join(out, nil)
}

// TestOverwriteKeepsOwnerRefusesReadOnly: a file of another owner keeps
// its owner and mode (when the user may write it); a read-only file is
// refused, untouched; and a change's note is printed only once written.
func TestOverwriteKeepsOwnerRefusesReadOnly(t *testing.T) {
	t.Parallel()
	short := strings.Replace(webDeployment, "    spec:\n", "    spec:\n      terminationGracePeriodSeconds: 10\n", 1)

	_, ro, _ := files(t, short, "")
	if err := os.Chmod(ro, 0o444); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := runInject([]string{"--preset", "envoy", "--entrypoint", "/web", ro}, nil, &bytes.Buffer{}, &stderr); code != inject.ExitCantCreate {
		t.Fatalf("read-only file: exit code got %d, want %d; stderr:\n%s", code, inject.ExitCantCreate, stderr.String())
	}
	if want := "cannot write " + ro + ": permission denied (mode 0444)"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr got %q, want %q", stderr.String(), want)
	}
	if strings.Contains(stderr.String(), "→") {
		t.Errorf("the note of a change that was not written:\n%s", stderr.String())
	}
	if b, _ := os.ReadFile(ro); string(b) != short {
		t.Errorf("the read-only file changed")
	}

	if os.Geteuid() != 0 {
		t.Skip("keeping another user's ownership needs root")
	}
	_, other, _ := files(t, short, "")
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(other, 0o664); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := runInject([]string{"--preset", "envoy", "--entrypoint", "/web", other}, nil, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("exit code got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	fi, err := os.Stat(other)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 || fi.Mode().Perm() != 0o664 {
		t.Errorf("owner %d:%d mode %v, want 65534:65534 and 0664 kept", st.Uid, st.Gid, fi.Mode().Perm())
	}
	if !strings.Contains(stderr.String(), "terminationGracePeriodSeconds 10 → 30") {
		t.Errorf("stderr got %q, want the note of the raised grace period", stderr.String())
	}
}

// TestEntrypointFlag: --entrypoint NAME=CMD is per container and
// repeatable; a bare value is the default, given once.
func TestEntrypointFlag(t *testing.T) {
	t.Parallel()
	two := strings.Replace(webDeployment, "      - name: envoy\n", "      - name: logger\n        image: logger:1\n      - name: envoy\n", 1)
	_, mpath, _ := files(t, two, "")
	out := injectFile(t, mpath, "--preset", "envoy", "--entrypoint", `web=["/web", "serve"]`, "--entrypoint", "logger=/logger -v")
	for _, want := range []string{"- --\n        - /web\n        - serve\n", "- --\n        - /logger\n        - -v\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output got:\n%s\nwant %q", out, want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--entrypoint", "/a", "--entrypoint", "/b"}, `--entrypoint "/b": a default entrypoint is already given ("/a")`},
		{[]string{"--entrypoint", "web=/a", "--entrypoint", "web=/b"}, `--entrypoint "web=/b": container "web" already has one`},
		{[]string{"--entrypoint", "web="}, `--entrypoint "web=": empty`},
	} {
		var stderr bytes.Buffer
		args := append(append([]string{"--preset", "envoy"}, tc.args...), mpath)
		if code := runInject(args, nil, &bytes.Buffer{}, &stderr); code != inject.ExitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("runInject(%q): exit code %d, stderr %q; want %d and %q", args, code, stderr.String(), inject.ExitUsage, tc.want)
		}
	}
}

// TestEntrypointsFile: --entrypoints FILE gives per-container entrypoints
// (bookinfo's six apps need six), beside --entrypoint but not for the same
// container.
func TestEntrypointsFile(t *testing.T) {
	t.Parallel()
	two := strings.Replace(webDeployment, "      - name: envoy\n", "      - name: logger\n        image: logger:1\n      - name: envoy\n", 1)
	_, mpath, _ := files(t, two, "")
	eps := filepath.Join(t.TempDir(), "eps.yaml")
	if err := os.WriteFile(eps, []byte("web: [/web, serve]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := injectFile(t, mpath, "--preset", "envoy", "--entrypoints", eps, "--entrypoint", "logger=/logger -v")
	for _, want := range []string{"- --\n        - /web\n        - serve\n", "- --\n        - /logger\n        - -v\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output got:\n%s\nwant %q", out, want)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--preset", "envoy", "--entrypoints", eps, "--entrypoint", "web=/a"}, inject.ExitUsage, `eps.yaml: container "web" has an entrypoint in the file and from --entrypoint web=...; give one`},
		{[]string{"-c", eps, "--entrypoints", eps}, inject.ExitUsage, "--entrypoints needs --preset"},
		{[]string{"--preset", "shutdown-manager", "--entrypoints", eps}, inject.ExitUsage, "--entrypoints does not apply to --preset shutdown-manager"},
		{[]string{"--preset", "envoy", "--entrypoints", eps + ".missing"}, inject.ExitNoInput, "eps.yaml.missing"},
	} {
		var stderr bytes.Buffer
		if code := runInject(append(tc.args, mpath), nil, &bytes.Buffer{}, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("runInject(%q): exit code %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
