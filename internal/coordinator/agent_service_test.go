package coordinator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"go.uber.org/goleak"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSessionKeepsHeartbeatWithoutSamples: the leader keeps each agent's
// latest heartbeat for the gates, but not its raw samples (they went to
// the orchestrator's sample store, or nowhere if no gate reads them).
func TestSessionKeepsHeartbeatWithoutSamples(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	stream := openAgentSession(t, leader.GRPCAddr())
	send := func(m *rollwavev1.AgentMessage) {
		t.Helper()
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: &rollwavev1.Hello{HostId: "h1", Cell: "c1"}}})
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("first message %v, %v; want a welcome", m, err)
	}
	// The freeze calendar (empty here) comes right after the welcome,
	// before any order.
	if m, err := stream.Recv(); err != nil || m.GetFreezeCalendar() == nil {
		t.Fatalf("second message %v, %v; want the freeze calendar", m, err)
	}
	send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: &rollwavev1.Heartbeat{
		Seq:      1,
		Host:     &rollwavev1.HostMetrics{MemPercent: 42},
		Slots:    []*rollwavev1.SlotMetrics{{App: "api", Version: "1"}},
		Samples:  []*rollwavev1.MetricSamples{{App: "api", Metric: "cpu_percent", Values: []float64{1, 2, 3}}},
		Requests: []*rollwavev1.RequestStats{{App: "api", Version: "1", Requests: 10, Errors: 1}},
		Facts:    []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: "1"}},
	}}})
	if m, err := stream.Recv(); err != nil || m.GetAck().GetSeq() != 1 {
		t.Fatalf("got %v, %v; want the heartbeat's ack", m, err)
	}
	// The ack is sent after the heartbeat is stored.
	hb, _, ok := leader.AgentHeartbeat("h1")
	if !ok || hb == nil {
		t.Fatal("no heartbeat kept for h1")
	}
	if hb.GetHost().GetMemPercent() != 42 || len(hb.GetSlots()) != 1 {
		t.Fatalf("kept heartbeat lost its metrics: %v", hb)
	}
	if len(hb.GetSamples()) != 0 || len(hb.GetRequests()) != 0 || len(hb.GetFacts()) != 0 {
		t.Fatalf("kept heartbeat still holds %d sample series, %d request stats, %d slot facts", len(hb.GetSamples()), len(hb.GetRequests()), len(hb.GetFacts()))
	}
	// The facts it carried were recorded all the same.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		h := leader.FSM().State().Host("h1")
		return len(h.GetApps()) == 1 && h.GetApps()[0].GetBlueVersion() == "1", fmt.Sprintf("host h1 in raft: %v", h)
	})
}

// TestHelloFactsReplaceStaleStateBeforeTheSessionCounts: a host that
// reverted on its own while no leader heard it (raft still says HEALTHY,
// and its facts say green serves) reconnects. By the time its session is
// visible — the welcome comes, AgentConnected is true — raft holds what the
// hello says (REVERTED_ISOLATED, blue serving), and the orders resent on
// connect are read from that truth: no assignment order for the
// generation the host already left. Before, the session was registered and
// the stale orders resent while the hello's facts were still queued.
func TestHelloFactsReplaceStaleStateBeforeTheSessionCounts(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	conn, err := grpc.NewClient(leader.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	session := func(hello *rollwavev1.Hello) rollwavev1.AgentService_SessionClient {
		t.Helper()
		stream, err := rollwavev1.NewAgentServiceClient(conn).Session(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: hello}}); err != nil {
			t.Fatal(err)
		}
		if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
			t.Fatalf("first message %v, %v; want a welcome", m, err)
		}
		return stream
	}
	green := []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_GREEN, BlueVersion: "0.9.0", GreenVersion: "1.0.0"}}
	blue := []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: "0.9.0", GreenVersion: "1.0.0"}}

	// Register h1, give it generation 1 of a release and walk it to
	// HEALTHY, as a leader would have recorded before the outage.
	first := session(&rollwavev1.Hello{HostId: "h1", Cell: "c1", Slots: green})
	if _, err := c.Client(leader).SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "api.hcl", Source: specSource("api-1", "api")}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.AssignHosts("api-1", 0, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []rollwavev1.AssignmentState{
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING, rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
		rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY,
	} {
		if _, err := leader.Apply(raftfsm.UpdateAssignments, &rollwavev1.UpdateAssignmentsCommand{TimeUnixNano: time.Now().UnixNano(),
			Updates: []*rollwavev1.AssignmentUpdate{{Host: "h1", App: "api", Generation: 1, State: st}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.CloseSend(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		return !leader.AgentConnected("h1"), "h1 still connected after closing its first session"
	})
	if st := leader.FSM().State().Assignment("h1", "api").GetState(); st != rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY {
		t.Fatalf("set-up: assignment is %s, want HEALTHY", st)
	}

	// It reconnects with the truth.
	stream := session(&rollwavev1.Hello{HostId: "h1", Cell: "c1", Slots: blue, Applied: []*rollwavev1.AppliedGeneration{{
		App: "api", Generation: 1, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED, Reason: "no leader ack for 31s",
	}}})
	st := leader.FSM().State()
	if got := st.Assignment("h1", "api").GetState(); got != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
		t.Fatalf("at the welcome raft says generation 1 is %s; want REVERTED_ISOLATED from the hello", got)
	}
	if apps := st.Host("h1").GetApps(); len(apps) != 1 || apps[0].GetActive() != rollwavev1.Slot_SLOT_BLUE {
		t.Fatalf("at the welcome raft says h1 serves %v; want blue from the hello", apps)
	}
	if !leader.AgentConnected("h1") {
		t.Fatal("h1 not connected after its welcome")
	}
	// Everything sent on connect comes before the ack of the first
	// heartbeat: none of it may be the order of generation 1.
	if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: &rollwavev1.Heartbeat{Seq: 1}}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a := m.GetAssignment(); a != nil {
			t.Fatalf("on reconnect the leader resent the order of generation %d, which the host had already reverted", a.GetAssignment().GetGeneration())
		}
		if m.GetAck() != nil {
			break
		}
	}
}

// openAgentSession opens an agent session to addr without TLS, as an
// agent would; the connection closes when the test ends.
// TestSilentSessionIsClosed: a session whose agent stops sending (a cut
// link sends no FIN) is closed by the leader (the agent sees Canceled)
// once it has been silent longer than AgentSilenceTimeout (2 s in coordtest),
// and the host counts as not connected; a heartbeating session stays.
func TestSilentSessionIsClosed(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	open := func(host string) rollwavev1.AgentService_SessionClient {
		stream := openAgentSession(t, leader.GRPCAddr())
		if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: &rollwavev1.Hello{HostId: host, Cell: "c1"}}}); err != nil {
			t.Fatal(err)
		}
		if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
			t.Fatalf("%s: first message %v, %v; want a welcome", host, m, err)
		}
		return stream
	}
	silent, talking := open("silent"), open("talking")

	// The talking agent heartbeats every 200 ms until the silent one's
	// session has ended.
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := silent.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	deadline := time.After(60 * time.Second)
	var err error
	for seq := uint64(1); err == nil; seq++ {
		if serr := talking.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: &rollwavev1.Heartbeat{Seq: seq}}}); serr != nil {
			t.Fatalf("talking agent's heartbeat: %v", serr)
		}
		m, rerr := talking.Recv()
		for rerr == nil && m.GetFreezeCalendar() != nil { // pushed after the welcome
			m, rerr = talking.Recv()
		}
		if rerr != nil || m.GetAck().GetSeq() != seq {
			t.Fatalf("talking agent got %v, %v; want the ack of %d", m, rerr, seq)
		}
		select {
		case err = <-ended:
		case <-deadline:
			t.Fatal("the silent session is still open after 60 s (silence timeout 2 s)")
		case <-time.After(200 * time.Millisecond): // the heartbeat interval
		}
	}
	// The server ends a session from outside its handler by cancelling
	// the stream's context (sessionTap), so the agent sees Canceled; the
	// reason is in the server's log.
	if status.Code(err) != codes.Canceled {
		t.Fatalf("silent session ended with %v, want Canceled", err)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		return !leader.AgentConnected("silent"), "the silent host still counts as connected"
	})
	if !leader.AgentConnected("talking") {
		t.Fatal("the heartbeating agent's session was closed too")
	}
}

func openAgentSession(t *testing.T, addr string) rollwavev1.AgentService_SessionClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := rollwavev1.NewAgentServiceClient(conn).Session(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

// TestReplacedSessionEndsWhileItsAgentIsSilent: the session handler
// receives on its own goroutine, so a session closed from elsewhere — here
// replaced by a newer session of the same host — must still end while its
// agent sends nothing (the server cancels the stream's context), the newer
// one must work, and once the agents are gone no goroutine of theirs is
// left on the server (handler or sender).
func TestReplacedSessionEndsWhileItsAgentIsSilent(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	before := goleak.IgnoreCurrent()
	open := func() (rollwavev1.AgentService_SessionClient, context.CancelFunc) {
		conn, err := grpc.NewClient(leader.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx(t))
		stream, err := rollwavev1.NewAgentServiceClient(conn).Session(sctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: &rollwavev1.Hello{HostId: "h1", Cell: "c1"}}}); err != nil {
			t.Fatal(err)
		}
		if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
			t.Fatalf("first message %v, %v; want a welcome", m, err)
		}
		return stream, func() { cancel(); conn.Close() }
	}
	old, closeOld := open()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := old.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	newer, closeNewer := open()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("the replaced session ended with %v, want Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the replaced session is still open 30 s after a newer session of its host was welcomed")
	}
	if err := newer.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: &rollwavev1.Heartbeat{Seq: 7}}}); err != nil {
		t.Fatal(err)
	}
	m, err := newer.Recv()
	for err == nil && m.GetAck() == nil {
		m, err = newer.Recv()
	}
	if err != nil || m.GetAck().GetSeq() != 7 {
		t.Fatalf("newer session got %v, %v; want the ack of 7", m, err)
	}
	if !leader.AgentConnected("h1") {
		t.Fatal("h1 does not count as connected through its newer session")
	}
	closeOld()
	closeNewer()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		err := goleak.Find(before)
		if err == nil || !strings.Contains(err.Error(), "coordinator.(*agent") {
			return true, ""
		}
		return false, fmt.Sprintf("session goroutines left on the server: %v", err)
	})
}
