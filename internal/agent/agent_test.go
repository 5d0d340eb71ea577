package agent_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rollwave/rollwave/internal/agent"
	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

var demoBin string

// TestMain builds the demo app, runs the tests and then fails the run if
// any goroutine the tests started (agents, reconcilers, bake monitors,
// sessions, coordinators) is still running.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rollwave-agent-test")
	if err != nil {
		panic(err)
	}
	if demoBin, err = demoapp.Build(demoapp.RepoRoot(), dir); err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// get fetches http://addr/ on a new connection (a kept-alive one would
// stay on the slot it was opened to, by design of the switch) and returns
// the trimmed body.
func get(addr string) (string, error) {
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func waitServes(t *testing.T, addr, version string, within time.Duration) {
	t.Helper()
	testutil.WaitFor(t, within, func() (bool, string) {
		got, err := get(addr)
		return err == nil && got == version, fmt.Sprintf("GET %s: %q %v", addr, got, err)
	})
}

func TestAgentsRegisterAndFollowTheLeader(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	cells := map[string]string{"h1": "a", "h2": "a", "h3": "b", "h4": "b", "h5": "c"}
	var agents []*agenttest.Agent
	start := time.Now()
	for _, name := range []string{"h1", "h2", "h3", "h4", "h5"} {
		agents = append(agents, agenttest.Start(t, name, cells[name], agenttest.Options{Join: leader.GossipAddr()}))
	}
	client := c.Client(c.Followers()[0])
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		resp, err := client.ListHosts(ctx(t), &rollwavev1.ListHostsRequest{})
		if err != nil {
			return false, err.Error()
		}
		ok := 0
		var seen []string
		for _, h := range resp.GetHosts() {
			seen = append(seen, fmt.Sprintf("%s/%s/%v/%s", h.GetHost().GetId(), h.GetHost().GetCell(), h.GetConnected(), h.GetLiveness()))
			if cells[h.GetHost().GetId()] == h.GetHost().GetCell() && h.GetConnected() && h.GetLiveness() == "alive" {
				ok++
			}
		}
		return ok == 5, strings.Join(seen, " ")
	})
	t.Logf("5 agents registered with their cells in %s", time.Since(start).Round(time.Millisecond))

	c.Kill(c.Index(leader))
	killed := time.Now()
	newLeader := c.Leader(30 * time.Second)
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		var seen []string
		all := true
		for _, a := range agents {
			seen = append(seen, fmt.Sprintf("%s:%v:%s", a.Name, a.Connected(), a.LeaderID()))
			all = all && a.Connected() && a.LeaderID() == newLeader.NodeID() && newLeader.AgentConnected(a.Name)
		}
		return all, "want all on " + newLeader.NodeID() + ": " + strings.Join(seen, " ")
	})
	t.Logf("all agents on new leader %s %s after the kill", newLeader.NodeID(), time.Since(killed).Round(time.Millisecond))
}

// fleet is one coordinator cluster, one agent and the demo app artifacts.
type fleet struct {
	t       *testing.T
	c       *coordtest.Cluster
	agent   *agenttest.Agent
	dir     string
	traffic string
	blue    int
	green   int
}

func newFleet(t *testing.T) *fleet { return newFleetWith(t, agenttest.Options{}) }

func newFleetWith(t *testing.T, o agenttest.Options) *fleet {
	c := coordtest.NewCluster(t, 1)
	ports := testutil.FreePorts(t, 3)
	f := &fleet{t: t, c: c, dir: t.TempDir(), blue: ports[0], green: ports[1]}
	f.traffic = fmt.Sprintf("127.0.0.1:%d", ports[2])
	o.Join = c.Leader(5 * time.Second).GossipAddr()
	f.agent = agenttest.Start(t, "h1", "a", o)
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		return f.leader().AgentConnected("h1") && f.leader().FSM().State().Host("h1") != nil, "agent h1 not registered"
	})
	return f
}

func (f *fleet) leader() *coordinator.Server { return f.c.Leader(5 * time.Second) }

// release submits and starts a release of the demo app and assigns it to
// h1; it returns the generation.
func (f *fleet) release(name, version string, a demoapp.Artifact) uint64 {
	f.t.Helper()
	src := demoapp.Spec(name, version, a, f.blue, f.green, port0(f.traffic), "1m")
	l := f.leader()
	if _, err := f.c.Client(l).SubmitRelease(ctx(f.t), &rollwavev1.SubmitReleaseRequest{
		SourceName: name + ".hcl", Source: []byte(src), Start: true, Actor: "test",
	}); err != nil {
		f.t.Fatalf("submit %s: %v", name, err)
	}
	as, err := l.AssignHosts(name, 0, []string{"h1"})
	if err != nil {
		f.t.Fatalf("assign %s: %v", name, err)
	}
	return as[0].GetGeneration()
}

func port0(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}

// waitState waits until raft records the assignment in state.
func (f *fleet) waitState(gen uint64, want rollwavev1.AssignmentState, within time.Duration) *rollwavev1.Assignment {
	f.t.Helper()
	var cur *rollwavev1.Assignment
	testutil.WaitFor(f.t, within, func() (bool, string) {
		cur = f.leader().FSM().State().Assignment("h1", "demo")
		return cur.GetGeneration() == gen && cur.GetState() == want, fmt.Sprintf("assignment %v", cur)
	})
	return cur
}

// finish ends a release as succeeded after finalizing h1.
func (f *fleet) finish(name string, gen uint64) {
	f.t.Helper()
	l := f.leader()
	l.OrderFinalize("h1", "demo", gen)
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED, 10*time.Second)
	if _, err := l.Apply(raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: time.Now().UnixNano(), ReleaseId: name, State: rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, CurrentPhase: -1,
	}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) artifact(version string, healthy bool) demoapp.Artifact {
	a, err := demoapp.Package(demoBin, f.dir, version, healthy)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// v1 deploys and finalizes version 1.0.0.
func (f *fleet) v1() {
	gen := f.release("demo-1", "1.0.0", f.artifact("1.0.0", true))
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, 15*time.Second)
	waitServes(f.t, f.traffic, "1.0.0", 5*time.Second)
	f.finish("demo-1", gen)
}

func TestIsolatedAgentRevertsAloneAndReportsIt(t *testing.T) {
	f := newFleet(t)
	f.v1()
	gen := f.release("demo-2", "2.0.0", f.artifact("2.0.0", true))
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, 15*time.Second)
	waitServes(t, f.traffic, "2.0.0", 5*time.Second)

	// isolation_timeout is 3s in the demo spec.
	f.agent.Link.Cut()
	cut := time.Now()
	// The leader notices the silent session by itself (no FIN on a cut).
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		return !f.leader().AgentConnected("h1"), "leader still holds the session of the cut agent"
	})
	waitServes(t, f.traffic, "1.0.0", 3*time.Second+2*time.Second)
	t.Logf("old version answering %.2fs after the cut (isolation_timeout 3s)", time.Since(cut).Seconds())
	// The agent counts from its last ack, which came up to one heartbeat
	// (200 ms) before the cut.
	if since := time.Since(cut); since < 3*time.Second-500*time.Millisecond {
		t.Fatalf("reverted %s after the cut, well before isolation_timeout (3s since the last ack)", since)
	}

	f.agent.Link.Heal()
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, 10*time.Second)
	if !strings.Contains(a.GetReason(), "isolated") {
		t.Fatalf("reason should say the agent was isolated: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
}

func TestVerifiedPhaseDoesNotRevertOnLostContact(t *testing.T) {
	f := newFleet(t)
	f.v1()
	gen := f.release("demo-2", "2.0.0", f.artifact("2.0.0", true))
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, 15*time.Second)
	f.leader().NotifyVerified("h1", "demo", gen)
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		st, ok := f.agent.Manager().AppState("demo")
		return ok && st.Verified, "agent has not recorded the verified phase"
	})
	f.agent.Link.Cut()
	// Twice the isolation timeout passes; the host keeps serving v2. The
	// wait is the condition itself: the host must hold v2 for all of it.
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		got, err := get(f.traffic)
		if err != nil || got != "2.0.0" {
			t.Fatalf("verified host changed what it serves after losing contact: %q %v", got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestWrongChecksumFailsAndOldSlotKeepsServing(t *testing.T) {
	f := newFleet(t)
	f.v1()
	bad := f.artifact("2.0.0", true)
	bad.SHA256 = strings.Repeat("0", 64)
	gen := f.release("demo-2", "2.0.0", bad)
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 15*time.Second)
	if !strings.Contains(a.GetReason(), "sha256") && !strings.Contains(a.GetReason(), "checksum") {
		t.Fatalf("failure reason should name the checksum: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
}

func TestTarEntryEscapingSlotFailsAndOldSlotKeepsServing(t *testing.T) {
	f := newFleet(t)
	f.v1()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("owned\n")
	if err := tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	gz.Close()
	path := filepath.Join(f.dir, "evil.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	gen := f.release("demo-2", "2.0.0", demoapp.Artifact{Path: path, URL: "file://" + path, SHA256: hex.EncodeToString(sum[:])})
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 15*time.Second)
	if !strings.Contains(a.GetReason(), "../evil") {
		t.Fatalf("failure reason should name the entry: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
	if _, err := os.Stat(filepath.Join(f.agent.DataDir, "apps", "demo", "evil")); err == nil {
		t.Fatal("the ../evil entry was written outside the slot directory")
	}
}

func TestUnhealthyNewVersionNeverTakesTraffic(t *testing.T) {
	f := newFleet(t)
	f.v1()
	// An app unhealthy from the start fails readiness and never takes
	// traffic.
	gen := f.release("demo-2", "2.0.0", f.artifact("2.0.0", false))
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 20*time.Second)
	if !strings.Contains(a.GetReason(), "healthy") && !strings.Contains(a.GetReason(), "ready") {
		t.Fatalf("failure reason should say why: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
}

func TestAgentRestartKeepsServingItsSlot(t *testing.T) {
	f := newFleet(t)
	f.v1()
	dir := f.agent.DataDir
	f.agent.Stop()
	// Process-driver slots die with their agent; the restarted agent
	// reconciles from its state file and serves the same slot again.
	f.agent = agenttest.Start(t, "h1", "a", agenttest.Options{Join: f.leader().GossipAddr(), DataDir: dir})
	waitServes(t, f.traffic, "1.0.0", 10*time.Second)
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) { return f.agent.Connected(), "agent not reconnected" })
}

func TestHealthFailingDuringBakeRevertsAtOnce(t *testing.T) {
	f := newFleet(t)
	f.v1()
	// Healthy for 2s (passes readiness and takes traffic), then failing.
	a, err := demoapp.PackageWith(demoBin, f.dir, "2.0.0", "2s")
	if err != nil {
		t.Fatal(err)
	}
	gen := f.release("demo-2", "2.0.0", a)
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, 15*time.Second)
	cur := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED, 15*time.Second)
	if !strings.Contains(cur.GetReason(), "failing during bake") {
		t.Fatalf("reason should say the checks failed during the bake: %q", cur.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
}

func TestPolicyViolatingAssignmentIsRefused(t *testing.T) {
	allowed := t.TempDir()
	f := newFleetWith(t, agenttest.Options{Policy: &agent.Policy{ArtifactPrefixes: []string{"file://" + allowed + "/"}, AllowRoot: true}})
	ok, err := demoapp.Package(demoBin, allowed, "1.0.0", true)
	if err != nil {
		t.Fatal(err)
	}
	gen := f.release("demo-1", "1.0.0", ok)
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, 15*time.Second)
	f.finish("demo-1", gen)
	waitServes(t, f.traffic, "1.0.0", 5*time.Second)

	// v2 comes from a directory the host's policy does not allow.
	gen = f.release("demo-2", "2.0.0", f.artifact("2.0.0", true))
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 15*time.Second)
	if !strings.Contains(a.GetReason(), "local policy") || !strings.Contains(a.GetReason(), "not under an allowed prefix") {
		t.Fatalf("reason should name the policy: %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", time.Second)
	if st, _ := f.agent.Manager().AppState("demo"); st.Generation != 1 {
		t.Fatalf("the refused generation reached the slots: state at generation %d", st.Generation)
	}
}

// The app's first deploy turning unhealthy during its bake cannot be
// reverted (there is no old version): the agent reports the host failed at
// once, with the reason, instead of leaving it "healthy".
func TestFirstDeployFailingBakeIsReportedFailed(t *testing.T) {
	f := newFleet(t)
	a, err := demoapp.PackageWith(demoBin, f.dir, "1.0.0", "2s")
	if err != nil {
		t.Fatal(err)
	}
	gen := f.release("demo-1", "1.0.0", a)
	cur := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, 20*time.Second)
	if !strings.Contains(cur.GetReason(), "first deploy") {
		t.Fatalf("reason should say it is a first deploy: %q", cur.GetReason())
	}
}
