//go:build e2e

// Package fleet boots real systemd hosts for rollwave's end-to-end tests.
//
// Each host is a systemd-nspawn container over a debootstrap'd Debian
// rootfs (built once and cached, see EnsureRootfs) with systemd 252 as
// PID 1, in its own network namespace rw-hN with address 10.77.0.(10+N)
// on eth0, a veth whose other end vh-hN sits on the bridge rwbr0
// (10.77.0.1/24) that the fleet creates. Coordinators run on the machine,
// bound to the bridge address (see Coordinators). Every host writes to its
// own overlay over the shared read-only rootfs, kept in the fleet's state
// directory, so a host stopped with StopHost boots again with the same
// files (installed packages, agent state).
//
// A Fleet cleans up everything it made when its test ends, failed or not,
// and New first sweeps what a killed earlier run left behind. Only one
// fleet runs on a machine at a time (the names and addresses are fixed).
//
// The recipe, its figures and its pitfalls: /work/shared/notes/nspawn-hosts.md.
package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Fixed names and addresses. Everything lives inside namespaces and on a
// bridge the fleet creates.
const (
	// Bridge is the bridge every host's veth joins.
	Bridge = "rwbr0"
	// BridgeIP is the machine's address on Bridge; coordinators bind it.
	BridgeIP = "10.77.0.1"
	// subnetPrefix + (10+N) is host hN's address.
	subnetPrefix = "10.77.0."
	// netnsPrefix + hN is a host's network namespace; vethPrefix + hN the
	// machine side of its link.
	netnsPrefix = "rw-"
	vethPrefix  = "vh-"
	// cgroupGroup is the fleet's cgroup under each hierarchy's root.
	cgroupGroup = "rw-hosts"
	// SharePath is where the fleet's share directory appears in hosts
	// (read-only).
	SharePath = "/opt/rw"
)

// cgroupRoots are the hierarchies a host's nspawn is placed in: with no
// systemd on the machine and --keep-unit, nspawn puts the container in
// <own cgroup>/payload, so each host needs its own cgroup in both.
var cgroupRoots = []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"}

// DefaultStateDir holds per-host state (overlay upper layers, machine-ids,
// console logs), the share and coordinator pid files. Override with
// ROLLWAVE_E2E_STATE. It is wiped at the start and end of every run.
const DefaultStateDir = "/var/tmp/rollwave-e2e"

// Options tune a fleet; the zero value is fine.
type Options struct {
	// BootTimeout bounds one host's boot to running/degraded; default 60s.
	BootTimeout time.Duration
	// ExecTimeout bounds a command run with Exec; default 60s.
	ExecTimeout time.Duration
}

// Fleet is a set of real systemd hosts and, once started, coordinators.
type Fleet struct {
	t      testing.TB
	opts   Options
	rootfs string
	state  string
	share  string
	repo   string

	lock *os.File // the machine lock, held until Teardown

	mu    sync.Mutex
	hosts []*Host
	next  int

	coords *Coordinators

	binOnce sync.Once
	binErr  error

	debOnce sync.Once
	deb     string
	debErr  error

	demoOnce sync.Once
	demoBin  string
	demoErr  error

	sshOnce sync.Once
	sshKey  string
	sshErr  error
}

// New prepares a fleet for t: skips unless root with the tools
// installed, sweeps resources left by a killed run, builds or reuses the
// rootfs and creates the bridge. Teardown is registered with t.Cleanup.
func New(t testing.TB, opts Options) *Fleet {
	t.Helper()
	requireRoot(t)
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 60 * time.Second
	}
	if opts.ExecTimeout == 0 {
		opts.ExecTimeout = 60 * time.Second
	}
	state := os.Getenv("ROLLWAVE_E2E_STATE")
	if state == "" {
		state = DefaultStateDir
	}
	f := &Fleet{t: t, opts: opts, state: state, share: filepath.Join(state, "share"), repo: RepoRoot()}

	start := time.Now()
	// One fleet per machine at a time (fixed names and addresses), also
	// across test binaries running in parallel.
	lock, err := lockMachine()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("waited %s for another fleet on this machine to finish", d.Round(time.Millisecond))
	}
	f.lock = lock
	if err := Sweep(state, t.Logf); err != nil {
		lock.Close()
		t.Fatalf("sweep stale e2e resources: %v", err)
	}
	t.Cleanup(f.Teardown)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rstart := time.Now()
	rootfs, built, err := EnsureRootfs(ctx, t.Logf)
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	f.rootfs = rootfs
	if built {
		t.Logf("TIMING rootfs build (debootstrap): %s", time.Since(rstart).Round(time.Millisecond))
	}
	for _, d := range []string{f.state, f.share, filepath.Join(f.share, "artifacts")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := createBridge(ctx); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	t.Logf("TIMING fleet setup (sweep, rootfs, bridge): %s", time.Since(start).Round(time.Millisecond))
	return f
}

// Share is the machine-side path of the directory hosts see read-only
// at SharePath.
func (f *Fleet) Share() string { return f.share }

// Hosts returns the hosts booted so far, in order.
func (f *Fleet) Hosts() []*Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Host(nil), f.hosts...)
}

// Host returns the host with the given name, failing the test if none.
func (f *Fleet) Host(name string) *Host {
	f.t.Helper()
	for _, h := range f.Hosts() {
		if h.Name == name {
			return h
		}
	}
	f.t.Fatalf("no host %q in the fleet", name)
	return nil
}

// Boot starts k more hosts in parallel and waits until systemd in each
// reports running (or degraded). It fails the test if any does not.
func (f *Fleet) Boot(k int) []*Host {
	f.t.Helper()
	f.mu.Lock()
	hosts := make([]*Host, k)
	for i := range hosts {
		f.next++
		n := f.next
		name := fmt.Sprintf("h%d", n)
		hosts[i] = &Host{
			Name:  name,
			Index: n,
			IP:    fmt.Sprintf("%s%d", subnetPrefix, 10+n),
			f:     f,
			netns: netnsPrefix + name,
			veth:  vethPrefix + name,
			dir:   filepath.Join(f.state, "hosts", name),
		}
		f.hosts = append(f.hosts, hosts[i])
	}
	total := len(f.hosts)
	f.mu.Unlock()
	// Machine-wide limits that a fleet of this size needs (never lowered).
	for _, lim := range []struct {
		path string
		want int
	}{
		// Every container's systemd, journald and services take several
		// inotify instances, all as root: Debian's default (128) runs out
		// at around 25 hosts ("Failed to allocate manager object: Too
		// many open files" from PID 1).
		{"/proc/sys/fs/inotify/max_user_instances", 128 + 24*total},
		// The ARP table is one table for every network namespace, and the
		// agents gossip with each other: each host resolves every other
		// one, about hosts² entries. Past gc_thresh3 (default 1024, ~30
		// hosts) new entries fail ("neighbor table overflow") and connects
		// fail with "no route to host".
		{"/proc/sys/net/ipv4/neigh/default/gc_thresh2", 512 + (total+1)*(total+1)},
		{"/proc/sys/net/ipv4/neigh/default/gc_thresh3", 1024 + 2*(total+1)*(total+1)},
	} {
		if err := raiseLimit(lim.path, lim.want, f.t.Logf); err != nil {
			f.t.Fatalf("boot %d hosts: %v", k, err)
		}
	}

	start := time.Now()
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.create(); err != nil {
				errs[i] = fmt.Errorf("%s: create: %w", h.Name, err)
				return
			}
			if err := h.boot(); err != nil {
				errs[i] = fmt.Errorf("%s: boot: %w\nconsole:\n%s", h.Name, err, h.consoleTail(30))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("TIMING boot of %d hosts to running: %s", k, time.Since(start).Round(time.Millisecond))
	return hosts
}

// raiseLimit raises the integer in a /proc/sys file to at least want; it
// never lowers it.
func raiseLimit(path string, want int, logf func(string, ...any)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	have, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s: %q: %w", path, b, err)
	}
	if have >= want {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(want)), 0o644); err != nil {
		return fmt.Errorf("raise %s from %d to %d: %w", path, have, want, err)
	}
	logf("raised %s from %d to %d for the fleet", path, have, want)
	return nil
}

// Teardown stops every coordinator and host and removes every resource
// the fleet made: containers, cgroups, namespaces, veths, the bridge and
// the state directory. It is registered with t.Cleanup by New and safe
// to call more than once.
func (f *Fleet) Teardown() {
	start := time.Now()
	if f.t.Failed() {
		f.dumpDiagnostics()
	}
	if f.coords != nil {
		f.coords.stopAll()
	}
	var wg sync.WaitGroup
	for _, h := range f.Hosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.halt(20 * time.Second); err != nil {
				f.t.Logf("teardown %s: %v", h.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := Sweep(f.state, f.t.Logf); err != nil {
		f.t.Errorf("teardown: %v", err)
	}
	f.mu.Lock()
	f.hosts = nil
	if f.lock != nil {
		f.lock.Close() // releases the machine lock
		f.lock = nil
	}
	f.mu.Unlock()
	f.t.Logf("TIMING teardown: %s", time.Since(start).Round(time.Millisecond))
}

// Sweep removes every resource a fleet makes: it kills the processes in
// the fleet's cgroups (containers and their nspawn) and the coordinators
// recorded in the state directory's pid files, removes the cgroups, the
// rw-* namespaces, vh-* veths and the bridge, and deletes the state
// directory. It is what Teardown does, and what New does first, in case a
// killed run left something behind.
func Sweep(state string, logf func(string, ...any)) error {
	var errs []error
	killCoordinatorPIDs(state, logf)
	for _, root := range cgroupRoots {
		group := filepath.Join(root, cgroupGroup)
		if _, err := os.Stat(group); err != nil {
			continue
		}
		if n := killCgroup(group); n > 0 {
			logf("sweep: killed %d leftover processes in %s", n, group)
		}
	}
	for _, root := range cgroupRoots {
		group := filepath.Join(root, cgroupGroup)
		if err := waitCgroupEmpty(group, 10*time.Second); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := removeCgroup(group); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Links first (deleting vh-hN takes its peer in the namespace with
	// it), then namespaces; a link may vanish on its own meanwhile.
	out, _ := run(ctx, 10*time.Second, "ip", "-o", "link", "show")
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		if strings.HasPrefix(name, vethPrefix+"h") || strings.HasPrefix(name, vethPrefix+"c") || name == Bridge {
			if o, err := run(ctx, 10*time.Second, "ip", "link", "del", name); err != nil && !strings.Contains(o, "Cannot find device") {
				errs = append(errs, fmt.Errorf("%v: %s", err, o))
			}
		}
	}
	out, _ = run(ctx, 10*time.Second, "ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && (strings.HasPrefix(fields[0], netnsPrefix+"h") || strings.HasPrefix(fields[0], netnsPrefix+"c")) {
			if o, err := run(ctx, 10*time.Second, "ip", "netns", "del", fields[0]); err != nil {
				errs = append(errs, fmt.Errorf("%v: %s", err, o))
			}
		}
	}
	if err := os.RemoveAll(state); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func createBridge(ctx context.Context) error {
	cmds := [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", BridgeIP + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	}
	for _, c := range cmds {
		if out, err := run(ctx, 10*time.Second, "ip", c...); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
	}
	return nil
}

// cgroupPIDs lists the processes in dir and every cgroup below it.
func cgroupPIDs(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, s := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(s, &pid); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// killCgroup SIGKILLs every process in dir's subtree and returns how many.
func killCgroup(dir string) int {
	pids := cgroupPIDs(dir)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// waitCgroupEmpty waits until no live process is left in dir's subtree
// (zombies waiting for their parent do not count: their cgroup membership
// ends at exit).
func waitCgroupEmpty(dir string, timeout time.Duration) error {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	deadline := time.Now().Add(timeout)
	interval := 5 * time.Millisecond
	for {
		pids := cgroupPIDs(dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %v after %s", dir, pids, timeout)
		}
		killCgroup(dir)
		time.Sleep(interval)
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}

// removeCgroup removes dir and every cgroup below it, deepest first.
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// RepoRoot finds the module root: the nearest parent of the working
// directory with a go.mod (go test runs in the package directory).
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// limitedBuffer keeps the last max bytes written.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lockMachine flocks fleet.lock in the cache dir (next to the rootfs) for
// the fleet's whole life.
func lockMachine() (*os.File, error) {
	if err := os.MkdirAll(cacheDir(), 0o755); err != nil {
		return nil, err
	}
	machineLock := filepath.Join(cacheDir(), "fleet.lock")
	f, err := os.OpenFile(machineLock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("machine lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("machine lock %s: %w", machineLock, err)
	}
	return f, nil
}

// dumpDiagnostics logs what helps after a failure: the end of every
// coordinator's log and of every running host's agent journal and console.
func (f *Fleet) dumpDiagnostics() {
	if f.coords != nil {
		for _, c := range f.coords.nodes {
			f.t.Logf("--- coordinator %s log (tail):\n%s", c.Name, tail(c.Log(), 40))
		}
	}
	for _, h := range f.Hosts() {
		if !h.Running() {
			f.t.Logf("--- %s is not running; console (tail):\n%s", h.Name, h.consoleTail(20))
			continue
		}
		if _, err := os.Stat(filepath.Join(h.Root(), "usr/bin/rollwave-agent")); err == nil {
			f.t.Log(h.Journal(AgentUnit, 40))
		}
	}
}
