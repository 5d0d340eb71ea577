package coordinator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestHeldReportRecordsHowLong: an agent that held its new version
// through a control-plane outage reports it when contact is back; the
// leader records a host.held_control_plane_down event whose evidence
// carries how long the host held (held_for), which `rollwave hosts` and
// `release status` show. Before, the duration was only inside the
// report's text.
func TestHeldReportRecordsHowLong(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	leader := c.Leader(30 * time.Second)
	stream := openAgentSession(t, leader.GRPCAddr())
	if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Hello{Hello: &rollwavev1.Hello{HostId: "h1", Cell: "c1"}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("first message %v, %v; want a welcome", m, err)
	}
	// The report as internal/agent's reportHold words it.
	report := "held version 2.0.0 for 35.2s while the control plane was down (no leader for 41.9s; control plane down: peers reachable and no live leader (2 of 2 agent peers alive, 0 of 3 coordinators alive))"
	if err := stream.Send(&rollwavev1.AgentMessage{Msg: &rollwavev1.AgentMessage_Progress{Progress: &rollwavev1.AssignmentProgress{
		App: "api", Generation: 7, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HELD_CONTROL_PLANE_DOWN, Reason: report,
		TimeUnixNano: time.Now().UnixNano(),
	}}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		evs := leader.FSM().State().Events("", 0, 1000)
		for _, e := range evs {
			if e.GetKind() != "host.held_control_plane_down" {
				continue
			}
			ev := e.GetEvidence()
			if e.GetHost() != "h1" || ev["app"] != "api" || ev["generation"] != "7" || ev["report"] != report || ev["held_for"] != "35.2s" {
				t.Fatalf("held event %v, want host h1, app api, generation 7, held_for 35.2s and the report", e)
			}
			return true, ""
		}
		return false, fmt.Sprintf("no host.held_control_plane_down event among %d", len(evs))
	})
}
