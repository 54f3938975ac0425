package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"envoy-lifecycle/internal/testproc"
)

// Local image names: pods must say imagePullPolicy: Never, there is no
// registry.
const (
	imgLifecycle = "e2e.local/envoy-lifecycle:test" // the project's image, as the Dockerfile builds it
	imgApp       = "e2e.local/app:test"             // the test app, with envoy-lifecycle in /usr/local/bin
	imgEnvoy     = "e2e.local/envoyfake:test"       // the Envoy fake as /usr/local/bin/envoy
	imgAgent     = "e2e.local/pilot-agent:test"     // the real pilot-agent, the fake as its Envoy
)

// The Dockerfile's final stage, as the project's image here is laid out;
// TestImageMatchesDockerfile fails when the Dockerfile says otherwise. The
// build flags come from the Dockerfile itself (testproc.DockerBuild).
var (
	dockerUser       = "65532:65532"
	dockerEntrypoint = []string{"/envoy-lifecycle"}
	dockerCopies     = []string{"COPY --from=build /out/tmp /tmp", "COPY --from=build /out/envoy-lifecycle /envoy-lifecycle"}
)

// file is one entry of an image layer.
type file struct {
	path string // without the leading /
	mode int64  // permission bits; dirs get the directory type
	dir  bool
	src  string // a file's content comes from this host file
}

// image is a one-layer image to build and import.
type image struct {
	name       string
	files      []file
	user       string
	entrypoint []string
}

// imageArchive is a built OCI archive.
type imageArchive struct {
	name, path string
}

// buildLifecycle builds envoy-lifecycle with the Dockerfile's environment
// and flags, so the image holds what users run.
func buildLifecycle(dir string) (string, error) {
	root, err := testproc.ModuleRoot()
	if err != nil {
		return "", err
	}
	env, args, err := testproc.DockerBuild(root)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "envoy-lifecycle")
	cmd := exec.Command("go", append(args, "-o", out, ".")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out, nil
}

// buildStatic builds a package of this module, static.
func buildStatic(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// buildImages builds the binaries and the OCI archives of every image into
// dir. agentBin and agentTmpl may be empty: no pilot-agent image then.
func buildImages(dir, agentBin, agentTmpl string) ([]imageArchive, error) {
	lifecycle, err := buildLifecycle(dir)
	if err != nil {
		return nil, err
	}
	bins := map[string]string{}
	for name, pkg := range map[string]string{"envoyfake": "./envoyfake/cmd/envoyfake", "testapp": "./e2e/testapp", "pause": "./e2e/pause"} {
		if bins[name], err = buildStatic(dir, name, pkg); err != nil {
			return nil, err
		}
	}
	tmp := file{path: "tmp", mode: 0o1777, dir: true}
	images := []image{
		// The Dockerfile's final stage: /tmp, the binary, user 65532.
		{name: imgLifecycle, files: []file{tmp, {path: "envoy-lifecycle", mode: 0o755, src: lifecycle}},
			user: dockerUser, entrypoint: dockerEntrypoint},
		// The README's wrap mode: the app image carries the binary.
		{name: imgApp, files: []file{tmp, {path: "app", mode: 0o755, src: bins["testapp"]},
			{path: "usr/local/bin/envoy-lifecycle", mode: 0o755, src: lifecycle}}},
		// Envoy's image runs as root when the pod's command bypasses its
		// entrypoint, as every example's does.
		{name: imgEnvoy, files: []file{tmp, {path: "usr/local/bin/envoy", mode: 0o755, src: bins["envoyfake"]}}},
		{name: pauseImage, files: []file{{path: "pause", mode: 0o755, src: bins["pause"]}}, entrypoint: []string{"/pause"}},
	}
	if agentBin != "" {
		// pilot-agent only needs a root certificate that parses: there is no
		// istiod to talk to.
		root := filepath.Join(dir, "root-cert.pem")
		if err := writePKI(dir); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(dir, "ca.crt"), root); err != nil {
			return nil, err
		}
		// Laid out as Istio's proxyv2 image: the agent, its bootstrap
		// template, and "envoy" on the PATH (here the fake).
		images = append(images, image{name: imgAgent, user: "1337:1337", entrypoint: []string{"/usr/local/bin/pilot-agent"}, files: []file{
			tmp, {path: "etc/istio/proxy", mode: 0o1777, dir: true},
			{path: "usr/local/bin/pilot-agent", mode: 0o755, src: agentBin},
			{path: "usr/local/bin/envoy", mode: 0o755, src: bins["envoyfake"]},
			{path: "var/lib/istio/envoy/envoy_bootstrap_tmpl.json", mode: 0o644, src: agentTmpl},
			{path: "var/run/secrets", mode: 0o1777, dir: true},
			{path: "var/run/secrets/istio/root-cert.pem", mode: 0o644, src: root},
		}})
	}
	var out []imageArchive
	for _, img := range images {
		path := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(img.name)+".tar")
		if err := writeOCIArchive(path, img); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.name, err)
		}
		out = append(out, imageArchive{name: img.name, path: path})
	}
	return out, nil
}

// writeOCIArchive writes img as an OCI image layout in a tar: oci-layout,
// index.json naming the image, and blobs for the manifest, the config and
// one uncompressed layer. `ctr images import` reads it.
func writeOCIArchive(path string, img image) error {
	layer, err := layerTar(img.files)
	if err != nil {
		return err
	}
	layerDigest := digest(layer)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"User": img.user, "Entrypoint": img.entrypoint, "Env": env},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": descriptor("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{descriptor("application/vnd.oci.image.layer.v1.tar", layer)},
	})
	if err != nil {
		return err
	}
	md := descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
	md["annotations"] = map[string]string{
		"io.containerd.image.name":          img.name,
		"org.opencontainers.image.ref.name": img.name[strings.LastIndexByte(img.name, ':')+1:],
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{md}})
	if err != nil {
		return err
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(b []byte) error { return put("blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:"), b) }
	for _, err := range []error{
		put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		blob(layer), blob(config), blob(manifest), put("index.json", index),
	} {
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// layerTar is the layer of files: every parent directory, root-owned,
// with fixed times so the same input gives the same digest.
func layerTar(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	dir := func(p string, mode int64) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		return tw.WriteHeader(&tar.Header{Name: p + "/", Mode: mode, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)})
	}
	for _, f := range files {
		parts := strings.Split(f.path, "/")
		for i := 1; i < len(parts); i++ {
			if err := dir(strings.Join(parts[:i], "/"), 0o755); err != nil {
				return nil, err
			}
		}
		if f.dir {
			if err := dir(f.path, f.mode); err != nil {
				return nil, err
			}
			continue
		}
		b, err := os.ReadFile(f.src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.path, Mode: f.mode, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func descriptor(mediaType string, b []byte) map[string]any {
	return map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
}

// TestImageMatchesDockerfile reads the Dockerfile and fails when its build
// flags, user, entrypoint or layout differ from what the images here are
// built with, so the real-node tests run what users run. It needs no root.
func TestImageMatchesDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines, drop comments.
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	var user, entrypoint string
	var copies []string
	final := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "FROM "):
			final = strings.HasPrefix(l, "FROM scratch")
		case final && strings.HasPrefix(l, "COPY "):
			copies = append(copies, l)
		case final && strings.HasPrefix(l, "USER "):
			user = strings.TrimSpace(strings.TrimPrefix(l, "USER "))
		case final && strings.HasPrefix(l, "ENTRYPOINT "):
			entrypoint = strings.TrimSpace(strings.TrimPrefix(l, "ENTRYPOINT "))
		}
	}
	env, args, err := testproc.DockerBuild("..")
	if err != nil {
		t.Fatal(err)
	}
	// Static, as the image's empty base needs.
	if !slices.Contains(env, "CGO_ENABLED=0") || !slices.Contains(args, "-trimpath") {
		t.Errorf("the Dockerfile's build is no longer static and trimmed: env %q, args %q", env, args)
	}
	if user != dockerUser {
		t.Errorf("the Dockerfile's USER is %q; the e2e image's %q", user, dockerUser)
	}
	if ep, _ := json.Marshal(dockerEntrypoint); entrypoint != string(ep) {
		t.Errorf("the Dockerfile's ENTRYPOINT is %s; the e2e image's %s", entrypoint, ep)
	}
	if strings.Join(copies, "\n") != strings.Join(dockerCopies, "\n") {
		t.Errorf("the Dockerfile's final stage copies:\n%s\nthe e2e image holds:\n%s", strings.Join(copies, "\n"), strings.Join(dockerCopies, "\n"))
	}
	if !strings.Contains(string(b), "chmod 1777 /out/tmp") {
		t.Error("the Dockerfile no longer makes /tmp mode 1777, as the e2e image does")
	}
}
