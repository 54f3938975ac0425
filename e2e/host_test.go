package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sysctls the node changes: the bridge plugin turns on forwarding, the
// kubelet sets its kernel defaults (protectKernelDefaults is off), and
// kube-proxy turns on route_localnet for node ports on 127.0.0.1.
var sysctls = []string{
	"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables",
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// hostPaths are directories the node's programs create outside its state
// directory, whatever their configuration says.
var hostPaths = []string{"/run/containerd", "/var/lib/cni", "/run/netns", "/var/log/pods", "/var/log/containers", "/var/lib/kubelet"}

// hostState is what the node may change on the host, for undoing it and
// for checking that it was undone.
type hostState struct {
	mounts   []string            // mount points, in mount order
	iptables map[string][]string // "iptables/nat" → its iptables-save lines
	cgroups  map[string]bool     // each controller's top-level directories
	links    map[string]bool
	sysctls  map[string]string
	paths    map[string]bool // which hostPaths exist
}

func snapshotHost() (hostState, error) {
	s := hostState{iptables: map[string][]string{}, cgroups: map[string]bool{}, links: map[string]bool{}, sysctls: map[string]string{}, paths: map[string]bool{}}
	for _, l := range readLines("/proc/self/mountinfo") {
		if f := strings.Fields(l); len(f) > 4 {
			s.mounts = append(s.mounts, f[4])
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(tool+"-save", "-t", table).Output()
			if err != nil {
				return s, fmt.Errorf("%s-save -t %s: %w", tool, table, err)
			}
			var lines []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, ":") || strings.HasPrefix(l, "-A ") {
					lines = append(lines, ruleKey(l))
				}
			}
			s.iptables[tool+"/"+table] = lines
		}
	}
	ctrls, _ := filepath.Glob("/sys/fs/cgroup/*/*")
	for _, d := range ctrls {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			s.cgroups[d] = true
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return s, err
	}
	for _, i := range ifs {
		s.links[i.Name] = true
	}
	for _, k := range sysctls {
		if b, err := os.ReadFile("/proc/sys/" + k); err == nil {
			s.sysctls[k] = strings.TrimSpace(string(b))
		}
	}
	for _, p := range hostPaths {
		_, err := os.Lstat(p)
		s.paths[p] = err == nil
	}
	return s, nil
}

// ruleKey drops a chain line's packet counters, which change on their own.
func ruleKey(l string) string {
	if strings.HasPrefix(l, ":") {
		if f := strings.Fields(l); len(f) >= 2 {
			return f[0] + " " + f[1]
		}
	}
	return l
}

// diff lists what changed from s to after.
func (s hostState) diff(after hostState) []string {
	var d []string
	before := map[string]bool{}
	for _, m := range s.mounts {
		before[m] = true
	}
	for _, m := range after.mounts {
		if !before[m] {
			d = append(d, "mount "+m)
		}
	}
	for k, lines := range after.iptables {
		old := map[string]int{}
		for _, l := range s.iptables[k] {
			old[l]++
		}
		for _, l := range lines {
			if old[l] == 0 {
				d = append(d, k+": "+l)
			}
			old[l]--
		}
	}
	for c := range after.cgroups {
		if !s.cgroups[c] {
			d = append(d, "cgroup "+c)
		}
	}
	for l := range after.links {
		if !s.links[l] {
			d = append(d, "network link "+l)
		}
	}
	for k, v := range after.sysctls {
		if s.sysctls[k] != v {
			d = append(d, fmt.Sprintf("sysctl %s=%s (was %s)", k, v, s.sysctls[k]))
		}
	}
	for p, ok := range after.paths {
		if ok && !s.paths[p] {
			d = append(d, "path "+p)
		}
	}
	for _, pid := range children() {
		d = append(d, fmt.Sprintf("process %d (%s)", pid, comm(pid)))
	}
	sort.Strings(d)
	return d
}

// restore undoes what changed since s: mounts, iptables rules and chains,
// cgroups, links, sysctls and paths the node created.
func (s hostState) restore() error {
	now, err := snapshotHost()
	if err != nil {
		return err
	}
	var errs []error
	before := map[string]bool{}
	for _, m := range s.mounts {
		before[m] = true
	}
	for i := len(now.mounts) - 1; i >= 0; i-- {
		if m := now.mounts[i]; !before[m] {
			// Detach: a mount still busy goes once its last user does.
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	for k, lines := range now.iptables {
		tool, table, _ := strings.Cut(k, "/")
		old := map[string]int{}
		for _, l := range s.iptables[k] {
			old[l]++
		}
		var chains []string
		for _, l := range lines {
			if old[l] > 0 {
				old[l]--
				continue
			}
			if strings.HasPrefix(l, ":") {
				chains = append(chains, strings.Fields(l)[0][1:])
				continue
			}
			args := append([]string{"-t", table, "-D"}, splitRule(strings.TrimPrefix(l, "-A "))...)
			if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %v: %s", tool, strings.Join(args, " "), err, out))
			}
		}
		for _, c := range chains {
			exec.Command(tool, "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			if out, err := exec.Command(tool, "-t", table, "-X", c).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("%s -t %s -X %s: %v: %s", tool, table, c, err, out))
			}
		}
	}
	for c := range now.cgroups {
		if !s.cgroups[c] {
			if err := removeCgroup(c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for l := range now.links {
		if !s.links[l] {
			if out, err := exec.Command("ip", "link", "delete", l).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link delete %s: %v: %s", l, err, out))
			}
		}
	}
	for k, v := range s.sysctls {
		if now.sysctls[k] != v {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, p := range hostPaths {
		if now.paths[p] && !s.paths[p] {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// splitRule splits an iptables-save rule into arguments; iptables-save
// double-quotes an argument with spaces (a comment).
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, has := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && quoted && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted, has = !quoted, true
		case c == ' ' && !quoted:
			if has {
				args = append(args, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteByte(c)
			has = true
		}
	}
	if has {
		args = append(args, cur.String())
	}
	return args
}

// removeCgroup removes a cgroup directory and its children, deepest first.
// A cgroup whose processes just died may be busy for a moment.
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var err error
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; try < 50; try++ {
			if err = syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond) // waiting for the kernel to release the cgroup
		}
		if err != nil {
			return fmt.Errorf("rmdir %s: %w", dirs[i], err)
		}
	}
	return nil
}

// setSubreaper makes this process the reaper of its orphaned descendants.
func setSubreaper() error {
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", e)
	}
	return nil
}

// children lists the processes whose parent is this process: after the
// node has stopped, only orphans it adopted as subreaper.
func children() []int {
	self := strconv.Itoa(os.Getpid())
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == self && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// killOrphans kills, by PID, every process the node's programs left behind
// (containerd's shims and their containers), and reaps them.
func killOrphans() error {
	deadline := time.Now().Add(stopTimeout)
	for {
		pids := children()
		if len(pids) == 0 {
			reapZombies()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes survive SIGKILL: %v", pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		reapZombies()
		time.Sleep(50 * time.Millisecond) // letting orphans of the killed reparent to us
	}
}

// reapZombies reaps exited orphans. The node's own programs are waited for
// by their exec.Cmd, and are gone by the time this runs.
func reapZombies() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func tlsClientCert(certFile, keyFile string) (tls.Certificate, error) {
	return tls.LoadX509KeyPair(certFile, keyFile)
}

func adminTransport(caFile string, cert tls.Certificate) *http.Transport {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(caFile); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
}
