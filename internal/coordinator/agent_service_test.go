package coordinator_test

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestSessionKeepsHeartbeatWithoutSamples: the leader keeps each agent's
// latest heartbeat for the gates, but not its raw samples (they went to
// the orchestrator's sample store, or nowhere if no gate reads them).
func TestSessionKeepsHeartbeatWithoutSamples(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(10 * time.Second)
	conn, err := grpc.NewClient(leader.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := rollwavev1.NewAgentServiceClient(conn).Session(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
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
	send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Heartbeat{Heartbeat: &rollwavev1.Heartbeat{
		Seq:     1,
		Host:    &rollwavev1.HostMetrics{MemPercent: 42},
		Slots:   []*rollwavev1.SlotMetrics{{App: "api", Version: "1"}},
		Samples: []*rollwavev1.MetricSamples{{App: "api", Metric: "cpu_percent", Values: []float64{1, 2, 3}}},
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
	if len(hb.GetSamples()) != 0 {
		t.Fatalf("kept heartbeat still holds %d sample series", len(hb.GetSamples()))
	}
}
