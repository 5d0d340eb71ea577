package fleet

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Coordinator is one `rollwave server` child process.
type Coordinator struct {
	Name               string
	GRPC, Raft, Gossip string
	// HTTP serves /metrics (the Go heap is read from it) and, with
	// BENCH_PPROF=1 in the environment, /debug/pprof/.
	HTTP             string
	DataDir, LogPath string
	cmd              *exec.Cmd
	exited           chan struct{}
	Client           rollwavev1.OperatorServiceClient
	conn             *grpc.ClientConn
	mu               sync.Mutex
	last             ProcSample // last sample while it ran
	cpuBase          float64    // CPU seconds of earlier incarnations
}

// Cluster is a 3-node (or n-node) coordinator cluster of real processes on
// 127.0.0.1.
type Cluster struct {
	Bin   string
	Dir   string
	Nodes []*Coordinator
	// RaftTimeout, when set, becomes raft's heartbeat and election timeout
	// (leader lease: half of it) through a config file; zero keeps the
	// defaults (1 s).
	RaftTimeout time.Duration
}

// StartCluster starts n coordinators with -bootstrap-expect n, each
// joining the first, and waits (≤ timeout) for a leader.
func StartCluster(bin, dir string, n int, raftTimeout, timeout time.Duration) (*Cluster, error) {
	c := &Cluster{Bin: bin, Dir: dir, RaftTimeout: raftTimeout}
	for i := 0; i < n; i++ {
		co := &Coordinator{Name: fmt.Sprintf("c%d", i+1), DataDir: filepath.Join(dir, fmt.Sprintf("c%d", i+1))}
		var err error
		for _, p := range []*string{&co.GRPC, &co.Raft, &co.Gossip, &co.HTTP} {
			if *p, err = testutil.PickFreeAddr(); err != nil {
				return nil, err
			}
		}
		co.LogPath = filepath.Join(dir, co.Name+".log")
		conn, err := grpc.NewClient(co.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		co.conn, co.Client = conn, rollwavev1.NewOperatorServiceClient(conn)
		c.Nodes = append(c.Nodes, co)
	}
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if _, err := c.WaitLeader(timeout); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Start (re)starts node i with its data dir.
func (c *Cluster) Start(i int) error {
	co := c.Nodes[i]
	if err := os.MkdirAll(co.DataDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(co.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"server", "-node", co.Name, "-data-dir", co.DataDir, "-bootstrap-expect", strconv.Itoa(len(c.Nodes)),
		"-grpc-addr", co.GRPC, "-raft-addr", co.Raft, "-gossip-addr", co.Gossip, "-log-level", "info",
		// Three servers on one machine: the default HTTP address would clash.
		"-http-addr", co.HTTP}
	if os.Getenv("BENCH_PPROF") == "1" {
		args = append(args, "-enable-pprof")
	}
	// Every simulated agent connects from 127.0.0.1: lift the per-client
	// connection cap (production default 100) for the simulator.
	body := fmt.Sprintf("node_name = %q\ndata_dir = %q\nlimits {\n  rpc_max_conns_per_client = 0\n}\n", co.Name, co.DataDir)
	if c.RaftTimeout > 0 {
		body += fmt.Sprintf("raft {\n  heartbeat_timeout = %q\n  election_timeout = %q\n  leader_lease_timeout = %q\n}\n",
			c.RaftTimeout.String(), c.RaftTimeout.String(), (c.RaftTimeout / 2).String())
	}
	cfg := filepath.Join(c.Dir, co.Name+".hcl")
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return err
	}
	args = append(args, "-config", cfg)
	for j, o := range c.Nodes {
		if j != i {
			args = append(args, "-join", o.Gossip)
		}
	}
	cmd := exec.Command(c.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", co.Name, err)
	}
	co.mu.Lock()
	co.cpuBase += co.last.CPUSeconds
	co.last = ProcSample{PeakHeapInuseBytes: co.last.PeakHeapInuseBytes}
	co.cmd, co.exited = cmd, make(chan struct{})
	ch := co.exited
	co.mu.Unlock()
	go func() { _ = cmd.Wait(); logf.Close(); close(ch) }()
	return nil
}

// Running reports whether node i's process is alive.
func (c *Cluster) Running(i int) bool {
	co := c.Nodes[i]
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.cmd == nil {
		return false
	}
	select {
	case <-co.exited:
		return false
	default:
		return true
	}
}

// Kill samples /proc, then sends SIGKILL to node i and waits for it to
// exit.
func (c *Cluster) Kill(i int) {
	c.Sample()
	c.KillNow(i)
}

// KillNow sends SIGKILL to node i at once and waits for it to exit.
func (c *Cluster) KillNow(i int) {
	co := c.Nodes[i]
	if !c.Running(i) {
		return
	}
	_ = co.cmd.Process.Signal(syscall.SIGKILL)
	<-co.exited
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for i := range c.Nodes {
		c.Kill(i)
		if c.Nodes[i].conn != nil {
			c.Nodes[i].conn.Close()
		}
	}
}

// Sample reads /proc for every running node and remembers the result.
func (c *Cluster) Sample() {
	for i, co := range c.Nodes {
		if !c.Running(i) {
			continue
		}
		if s, err := ReadProc(co.cmd.Process.Pid); err == nil {
			heap, herr := readHeapInuse(co.HTTP)
			co.mu.Lock()
			s.PeakHeapInuseBytes = co.last.PeakHeapInuseBytes
			if herr == nil {
				s.HeapInuseBytes = heap
			} else {
				s.HeapInuseBytes = co.last.HeapInuseBytes // a busy node may miss one read
			}
			s.PeakHeapInuseBytes = max(s.PeakHeapInuseBytes, s.HeapInuseBytes)
			co.last = s
			co.mu.Unlock()
		}
	}
}

// Usage returns node i's last sample with CPU seconds over all its
// incarnations.
func (c *Cluster) Usage(i int) ProcSample {
	co := c.Nodes[i]
	co.mu.Lock()
	defer co.mu.Unlock()
	s := co.last
	s.CPUSeconds += co.cpuBase
	return s
}

// Status asks node i for its status (1 s bound).
func (c *Cluster) Status(i int) (*rollwavev1.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Nodes[i].Client.Status(ctx, &rollwavev1.StatusRequest{})
}

// Leader returns the index of the node that says it leads, or -1.
func (c *Cluster) Leader() int {
	for i := range c.Nodes {
		if !c.Running(i) {
			continue
		}
		if st, err := c.Status(i); err == nil && strings.EqualFold(st.GetRaftState(), "leader") {
			return i
		}
	}
	return -1
}

// WaitLeader polls until some node leads.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 {
			return l, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1, fmt.Errorf("no leader within %s (logs in %s)", timeout, c.Dir)
}

// GRPCAddrs lists every node's gRPC address.
func (c *Cluster) GRPCAddrs() []string {
	var out []string
	for _, co := range c.Nodes {
		out = append(out, co.GRPC)
	}
	return out
}

// Elections counts, over every node's log, the elections raft started
// (a follower's heartbeat timeout, or a candidate's election timeout).
func (c *Cluster) Elections() int {
	n := 0
	for _, co := range c.Nodes {
		b, err := os.ReadFile(co.LogPath)
		if err != nil {
			continue
		}
		n += strings.Count(string(b), "heartbeat timeout reached, starting election")
		n += strings.Count(string(b), "Election timeout reached, restarting election")
	}
	return n
}

// readHeapInuse reads go_memstats_heap_inuse_bytes from the /metrics of
// the coordinator at addr (1 s bound).
func readHeapInuse(addr string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("parse go_memstats_heap_inuse_bytes %q: %w", v, err)
			}
			return uint64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_memstats_heap_inuse_bytes in /metrics of %s", addr)
}
