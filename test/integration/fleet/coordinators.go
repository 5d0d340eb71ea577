//go:build e2e

package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Coordinator ports: coordinator i (0-based) listens on BridgeIP at
// coordBasePort+10*i (gRPC), +1 (raft) and +2 (gossip). The bridge
// address is the fleet's own, so fixed ports cannot collide with anything
// but an earlier run, whose coordinators Sweep kills.
const coordBasePort = 17420

// Coordinators are `rollwave server` processes (the real binary from
// `make build`) on the machine, bound to the bridge address so agents in
// the hosts reach them over the bridge.
type Coordinators struct {
	f     *Fleet
	t     testing.TB
	bin   string
	dir   string // the data dirs' parent, a TempDir
	nodes []*Coordinator
	// pki is the cluster's TLS material, gossip key and admin token; nil
	// when the fleet runs in the clear (ROLLWAVE_E2E_INSECURE).
	pki *pki
}

// CoordinatorOptions change how StartCoordinatorsWith starts servers.
type CoordinatorOptions struct {
	// OwnNetns runs coordinator cN in its own network namespace rw-cN,
	// linked to the bridge by the veth vh-cN, at subnetPrefix + (200+N):
	// raft and gossip between coordinators then cross links a test can
	// shape (Shape) or cut. Without it the coordinators share BridgeIP and
	// talk to each other over the machine's loopback.
	OwnNetns bool
	// Config is server config (HCL) given to every server as a -config
	// file, after its data_dir; flags win over it.
	Config string
}

// Coordinator is one server process.
type Coordinator struct {
	Name string
	// GRPC, Raft and Gossip are its addresses (host:port).
	GRPC, Raft, Gossip string
	// netns and veth are its namespace and the machine side of its link
	// (CoordinatorOptions.OwnNetns); empty: the machine's.
	netns, veth string
	config      string // -config file's body after data_dir, or empty

	c       *Coordinators
	dataDir string
	log     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartCoordinators builds the binaries (make build) and starts n
// servers with -bootstrap-expect n that join each other, then waits until
// the CLI reaches a leader. Data dirs are in t.TempDir().
func (f *Fleet) StartCoordinators(n int) *Coordinators {
	f.t.Helper()
	return f.StartCoordinatorsWith(n, CoordinatorOptions{})
}

// StartCoordinatorsWith is StartCoordinators with options.
func (f *Fleet) StartCoordinatorsWith(n int, opts CoordinatorOptions) *Coordinators {
	f.t.Helper()
	start := time.Now()
	if err := f.buildBinaries(); err != nil {
		f.t.Fatalf("make build: %v", err)
	}
	cs := &Coordinators{f: f, t: f.t, bin: filepath.Join(f.repo, "bin", "rollwave")}
	dir := f.t.TempDir()
	cs.dir = dir
	if secureMode() {
		p, err := newPKI(filepath.Join(dir, "pki"))
		if err != nil {
			f.t.Fatalf("fleet PKI: %v", err)
		}
		cs.pki = p
	}
	// Cleanups run last-in first-out: stop the servers before their
	// TempDir is removed.
	f.t.Cleanup(cs.stopAll)
	for i := 0; i < n; i++ {
		p := coordBasePort + 10*i
		ip := BridgeIP
		c := &Coordinator{
			Name:    fmt.Sprintf("c%d", i+1),
			c:       cs,
			config:  opts.Config,
			dataDir: filepath.Join(dir, fmt.Sprintf("c%d", i+1), "data"),
			// Logs live in the state dir, not the TempDir, so a failed
			// test's teardown can still show them.
			log: filepath.Join(f.state, "coordinators", fmt.Sprintf("c%d.log", i+1)),
		}
		if opts.OwnNetns {
			ip = fmt.Sprintf("%s%d", subnetPrefix, 201+i)
			c.netns, c.veth = netnsPrefix+c.Name, vethPrefix+c.Name
			if err := createNetns(c.netns, c.veth, ip); err != nil {
				f.t.Fatalf("network namespace of %s: %v", c.Name, err)
			}
		}
		c.GRPC = net.JoinHostPort(ip, strconv.Itoa(p))
		c.Raft = net.JoinHostPort(ip, strconv.Itoa(p+1))
		c.Gossip = net.JoinHostPort(ip, strconv.Itoa(p+2))
		cs.nodes = append(cs.nodes, c)
	}
	f.coords = cs
	for _, c := range cs.nodes {
		if err := c.start(); err != nil {
			f.t.Fatalf("start %s: %v", c.Name, err)
		}
	}
	cs.WaitLeader(60 * time.Second)
	if cs.pki != nil {
		if err := cs.bootstrapACL(); err != nil {
			f.t.Fatal(err)
		}
	}
	f.t.Logf("TIMING %d coordinators up with a leader (secured: %v): %s", n, cs.pki != nil, time.Since(start).Round(time.Millisecond))
	return cs
}

// Coordinators returns the fleet's coordinators (nil before
// StartCoordinators).
func (f *Fleet) Coordinators() *Coordinators { return f.coords }

// Nodes returns the coordinators.
func (cs *Coordinators) Nodes() []*Coordinator { return cs.nodes }

// GossipAddrs are the coordinators' gossip addresses: an agent's join list.
func (cs *Coordinators) GossipAddrs() []string {
	var as []string
	for _, c := range cs.nodes {
		as = append(as, c.Gossip)
	}
	return as
}

func (c *Coordinator) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range []string{c.dataDir, filepath.Dir(c.log)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	args := []string{"server",
		"-node", c.Name,
		"-data-dir", c.dataDir,
		"-bootstrap-expect", strconv.Itoa(len(c.c.nodes)),
		"-grpc-addr", c.GRPC, "-raft-addr", c.Raft, "-gossip-addr", c.Gossip,
		// Several coordinators may share one network namespace: each HTTP
		// listener takes a port of its own.
		"-http-addr", "127.0.0.1:0",
	}
	for _, o := range c.c.nodes {
		if o != c {
			args = append(args, "-join", o.Gossip)
		}
	}
	if c.c.pki != nil {
		args = append(args, c.c.pki.serverArgs()...)
	}
	if c.config != "" {
		// A config file is validated on its own: it names the data dir.
		file := filepath.Join(filepath.Dir(c.dataDir), "server.hcl")
		body := fmt.Sprintf("data_dir = %q\n%s", c.dataDir, c.config)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			return err
		}
		args = append(args, "-config", file)
	}
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.c.bin, args...)
	if c.netns != "" {
		// ip netns exec execs the server in place: the pid is the server's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.netns, c.c.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	// A pid file lets Sweep end this process, and remove its data, if the
	// test binary is killed.
	os.WriteFile(c.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"+c.c.dir+"\n"), 0o644)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.cmd, c.exited = cmd, exited
	return nil
}

func (c *Coordinator) pidFile() string {
	return filepath.Join(c.c.f.state, "coordinator-"+c.Name+".pid")
}

// Running reports whether the server process is alive.
func (c *Coordinator) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// Kill SIGKILLs the server and waits for it to exit.
func (c *Coordinator) Kill() { c.signal(syscall.SIGKILL, 10*time.Second) }

// Stop SIGTERMs the server (a graceful leave) and waits for it to exit,
// killing it after 30s.
func (c *Coordinator) Stop() { c.signal(syscall.SIGTERM, 30*time.Second) }

func (c *Coordinator) signal(sig syscall.Signal, timeout time.Duration) {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(timeout):
		c.c.t.Logf("%s did not exit within %s of %v; killing it", c.Name, timeout, sig)
		cmd.Process.Kill()
		<-exited
	}
	os.Remove(c.pidFile())
}

// Restart starts a stopped or killed server again with its data dir.
func (c *Coordinator) Restart() {
	c.c.t.Helper()
	if c.Running() {
		c.c.t.Fatalf("%s is still running", c.Name)
	}
	if err := c.start(); err != nil {
		c.c.t.Fatalf("restart %s: %v", c.Name, err)
	}
}

// Shape puts `tc qdisc replace dev DEV root QDISC...` on both ends of c's
// link (CoordinatorOptions.OwnNetns): what c sends and what it is sent.
// QDISC is the kind and its parameters, e.g. "netem", "delay", "100ms"
// (where the kernel has sch_netem) or "tbf", "rate", "256kbit", ... (a
// slow link that queues, then drops).
func (c *Coordinator) Shape(qdisc ...string) error {
	if c.netns == "" {
		return fmt.Errorf("%s has no link of its own (CoordinatorOptions.OwnNetns)", c.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, dev := range [][]string{{"tc"}, {"ip", "netns", "exec", c.netns, "tc"}} {
		ifname := c.veth
		if len(dev) > 1 {
			ifname = "eth0"
		}
		args := append(append(dev[1:], "qdisc", "replace", "dev", ifname, "root"), qdisc...)
		if out, err := run(ctx, 10*time.Second, dev[0], args...); err != nil {
			return fmt.Errorf("%s %s: %w: %s", dev[0], strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// Unshape removes what Shape put on c's link.
func (c *Coordinator) Unshape() error {
	if c.netns == "" {
		return fmt.Errorf("%s has no link of its own (CoordinatorOptions.OwnNetns)", c.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, argv := range [][]string{
		{"tc", "qdisc", "del", "dev", c.veth, "root"},
		{"ip", "netns", "exec", c.netns, "tc", "qdisc", "del", "dev", "eth0", "root"},
	} {
		if out, err := run(ctx, 10*time.Second, argv[0], argv[1:]...); err != nil && !strings.Contains(out, "No such file") {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
		}
	}
	return nil
}

// Cut takes c's link down (its machine side): everything c sends or is
// sent is lost until Heal; no connection is reset.
func (c *Coordinator) Cut() error { return c.link("down") }

// Heal brings c's link back up.
func (c *Coordinator) Heal() error { return c.link("up") }

func (c *Coordinator) link(state string) error {
	if c.netns == "" {
		return fmt.Errorf("%s has no link of its own (CoordinatorOptions.OwnNetns)", c.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := run(ctx, 10*time.Second, "ip", "link", "set", c.veth, state); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// ResetRaftConns aborts the raft connections c accepted (ss -K inside its
// namespace), as a middlebox resetting them would: the server's reads
// fail while the peers are alive. It returns ss's listing of them.
func (c *Coordinator) ResetRaftConns() (string, error) {
	if c.netns == "" {
		return "", fmt.Errorf("%s has no link of its own (CoordinatorOptions.OwnNetns)", c.Name)
	}
	_, port, _ := net.SplitHostPort(c.Raft)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := run(ctx, 10*time.Second, "ip", "netns", "exec", c.netns, "ss", "-K", "-t", "state", "established", "( sport = :"+port+" )")
	if err != nil {
		return out, fmt.Errorf("ss -K: %w: %s", err, out)
	}
	return out, nil
}

// Log returns the server's output so far.
func (c *Coordinator) Log() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// CLI runs `bin/rollwave ARGS -address ADDR` against the first running
// coordinator, bounded by 30s, and returns stdout, stderr and the error.
func (cs *Coordinators) CLI(args ...string) (string, string, error) {
	for _, c := range cs.nodes {
		if c.Running() {
			return cs.CLIAt(c, args...)
		}
	}
	return "", "", fmt.Errorf("no coordinator is running")
}

// CLIAt is CLI against one coordinator.
func (cs *Coordinators) CLIAt(c *Coordinator, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cs.bin, append(args, "-address", c.GRPC)...)
	cmd.Env = append(os.Environ(), "ROLLWAVE_ACTOR=e2e")
	if cs.pki != nil {
		cmd.Env = append(cmd.Env, cs.pki.cliEnv()...)
	}
	cmd.WaitDelay = 2 * time.Second
	var out, errb limitedBuffer
	out.max, errb.max = 4<<20, 1<<20
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("rollwave %s: %w", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), err
}

// CLIStart starts `bin/rollwave ARGS -address ADDR` against the first
// running coordinator, for a command that runs until interrupted
// (`rollwave logs -f`). out returns its stdout so far; stop sends it
// SIGINT, waits for it (bounded by 10s, then SIGKILL) and returns its
// error. The test's end stops it too.
func (cs *Coordinators) CLIStart(args ...string) (out func() string, stop func() error, err error) {
	var c *Coordinator
	for _, n := range cs.nodes {
		if n.Running() {
			c = n
			break
		}
	}
	if c == nil {
		return nil, nil, fmt.Errorf("no coordinator is running")
	}
	cmd := exec.Command(cs.bin, append(args, "-address", c.GRPC)...)
	cmd.Env = append(os.Environ(), "ROLLWAVE_ACTOR=e2e")
	if cs.pki != nil {
		cmd.Env = append(cmd.Env, cs.pki.cliEnv()...)
	}
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = 4<<20, 1<<20
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("rollwave %s: %w", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	var waitErr error
	stop = func() error {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case waitErr = <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				waitErr = fmt.Errorf("rollwave %s: still running 10s after SIGINT; killed", strings.Join(args, " "))
				<-done
			}
			if waitErr != nil {
				waitErr = fmt.Errorf("rollwave %s: %w: %s", strings.Join(args, " "), waitErr, stderr.String())
			}
		})
		return waitErr
	}
	cs.t.Cleanup(func() { _ = stop() })
	return stdout.String, stop, nil
}

// Status runs `rollwave status -json` against c.
func (cs *Coordinators) Status(c *Coordinator) (*rollwavev1.StatusResponse, error) {
	out, errOut, err := cs.CLIAt(c, "status", "-json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, errOut)
	}
	st := &rollwavev1.StatusResponse{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), st); err != nil {
		return nil, fmt.Errorf("decode status -json: %w\n%s", err, out)
	}
	return st, nil
}

// WaitLeader waits until every running coordinator names the same leader,
// which is running, and returns it.
func (cs *Coordinators) WaitLeader(timeout time.Duration) *Coordinator {
	cs.t.Helper()
	var leader *Coordinator
	testutil.WaitForWith(cs.t, timeout, func() (bool, string) {
		leader = nil
		var id string
		for _, c := range cs.nodes {
			if !c.Running() {
				continue
			}
			st, err := cs.Status(c)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", c.Name, err)
			}
			if st.GetLeaderId() == "" || (id != "" && st.GetLeaderId() != id) {
				return false, fmt.Sprintf("%s: leader %q (others say %q)", c.Name, st.GetLeaderId(), id)
			}
			id = st.GetLeaderId()
		}
		for _, c := range cs.nodes {
			if c.Name == id && c.Running() {
				leader = c
			}
		}
		return leader != nil, fmt.Sprintf("leader %q is not a running coordinator", id)
	}, func() string {
		var b strings.Builder
		for _, c := range cs.nodes {
			fmt.Fprintf(&b, "--- %s log:\n%s\n", c.Name, tail(c.Log(), 20))
		}
		return b.String()
	})
	return leader
}

func (cs *Coordinators) stopAll() {
	var wg sync.WaitGroup
	for _, c := range cs.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); c.Kill() }()
	}
	wg.Wait()
}

// killCoordinatorPIDs ends coordinators a killed run recorded in state,
// by pid, when the pid is still a `rollwave server`.
func killCoordinatorPIDs(state string, logf func(string, ...any)) {
	files, _ := filepath.Glob(filepath.Join(state, "coordinator-*.pid"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		pid, err := strconv.Atoi(lines[0])
		if err != nil || pid <= 0 {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && filepath.Base(args[0]) == "rollwave" && args[1] == "server" {
			logf("sweep: killing leftover coordinator pid %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 100 && processAlive(pid); i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
		// The killed test's TempDir (never removed when a test binary dies).
		if len(lines) > 1 && filepath.IsAbs(lines[1]) && strings.HasPrefix(lines[1], os.TempDir()+"/") {
			os.RemoveAll(lines[1])
			os.Remove(filepath.Dir(lines[1])) // the test's parent dir, if now empty
		}
	}
}

// buildBinaries runs `make build` once per fleet: the coordinators and
// the CLI are the real binaries.
func (f *Fleet) buildBinaries() error {
	f.binOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", "build")
		cmd.Dir = f.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			f.binErr = fmt.Errorf("%w\n%s", err, tail(string(out), 30))
		}
	})
	return f.binErr
}

// Hosts runs `rollwave hosts -json` and decodes its list.
func (cs *Coordinators) Hosts() ([]*rollwavev1.HostView, error) {
	out, errOut, err := cs.CLI("hosts", "-json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, errOut)
	}
	var list struct {
		Hosts []json.RawMessage `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode hosts -json: %w\n%s", err, out)
	}
	views := make([]*rollwavev1.HostView, 0, len(list.Hosts))
	for _, r := range list.Hosts {
		v := &rollwavev1.HostView{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r, v); err != nil {
			return nil, fmt.Errorf("decode host %s: %w", r, err)
		}
		views = append(views, v)
	}
	return views, nil
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
		}
	}
	return false
}

// WaitConnected waits until the coordinators list each of hosts as
// connected (an open agent session), failing the test after timeout.
func (cs *Coordinators) WaitConnected(hosts []*Host, timeout time.Duration) {
	cs.t.Helper()
	testutil.WaitFor(cs.t, timeout, func() (bool, string) {
		views, err := cs.Hosts()
		if err != nil {
			return false, err.Error()
		}
		connected := map[string]bool{}
		for _, v := range views {
			connected[v.GetHost().GetId()] = v.GetConnected()
		}
		for _, h := range hosts {
			if !connected[h.Name] {
				return false, fmt.Sprintf("%s not connected (hosts: %v)", h.Name, connected)
			}
		}
		return true, ""
	})
}
