package coordinator

import (
	"context"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/deploy/rollout"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// setupRollout creates the rollout orchestrator and enables it while this
// server leads (the leader hook runs after the barrier; losing leadership
// disables it and waits for every release goroutine).
func (s *Server) setupRollout() error {
	cfg := rollout.DefaultConfig()
	cfg.Logger = s.cfg.logger().With("node", s.cfg.NodeID)
	o, err := rollout.New(cfg, s.fsm.State(), rolloutWriter{s}, rolloutAgents{s})
	if err != nil {
		return err
	}
	s.rollout = o
	s.AddLeaderHook(func(ctx context.Context, leader bool) {
		if !leader {
			return
		}
		// Enabled before the hook returns (agents reconnect once gossip
		// announces the leader); disabled inside the term, so stepping
		// down waits for every release goroutine.
		o.SetEnabled(true)
		goLeader(ctx, func() {
			<-ctx.Done()
			o.SetEnabled(false)
		})
	})
	return nil
}

// Rollout returns the server's orchestrator (enabled only while it leads).
func (s *Server) Rollout() *rollout.Orchestrator { return s.rollout }

// observeHeartbeat hands an agent heartbeat to the orchestrator (samples
// for the baseline gate, reachability). It does not block.
func (s *Server) observeHeartbeat(host string, hb *rollwavev1.Heartbeat, at time.Time) {
	if s.rollout != nil {
		s.rollout.Observe(host, hb, at)
	}
}

// rolloutWriter is the orchestrator's rollout.Writer: each call is one
// raft entry through Server.Apply.
type rolloutWriter struct{ s *Server }

func (w rolloutWriter) SetReleaseState(_ context.Context, cmd *rollwavev1.SetReleaseStateCommand) error {
	return w.s.applyErr(raftfsm.SetReleaseState, cmd)
}

func (w rolloutWriter) SetPhaseState(_ context.Context, cmd *rollwavev1.SetPhaseStateCommand) error {
	return w.s.applyErr(raftfsm.SetPhaseState, cmd)
}

func (w rolloutWriter) SetReleasePlan(_ context.Context, cmd *rollwavev1.SubmitReleaseCommand) error {
	return w.s.applyErr(raftfsm.SetReleasePlan, cmd)
}

func (w rolloutWriter) SubmitRelease(_ context.Context, cmd *rollwavev1.SubmitReleaseCommand) error {
	return w.s.applyErr(raftfsm.SubmitRelease, cmd)
}

func (w rolloutWriter) AdvancePhase(_ context.Context, cmd *rollwavev1.SetReleaseStateCommand) error {
	return w.s.applyErr(raftfsm.AdvancePhase, cmd)
}

func (w rolloutWriter) UpdateAssignments(_ context.Context, cmd *rollwavev1.UpdateAssignmentsCommand) error {
	return w.s.applyErr(raftfsm.UpdateAssignments, cmd)
}

func (w rolloutWriter) AppendEvents(_ context.Context, cmd *rollwavev1.AppendEventsCommand) error {
	return w.s.applyErr(raftfsm.AppendEvents, cmd)
}

// rolloutAgents is the orchestrator's rollout.Agents: the dispatch calls.
type rolloutAgents struct{ s *Server }

func (a rolloutAgents) AssignHosts(releaseID string, phase int32, hosts []string) ([]*rollwavev1.Assignment, error) {
	return a.s.AssignHosts(releaseID, phase, hosts)
}

func (a rolloutAgents) OrderRevert(host, app string, gen uint64, reason string) error {
	return a.s.OrderRevert(host, app, gen, reason)
}

func (a rolloutAgents) OrderFinalize(host, app string, gen uint64) bool {
	return a.s.OrderFinalize(host, app, gen)
}

func (a rolloutAgents) NotifyVerified(host, app string, gen uint64) bool {
	return a.s.NotifyVerified(host, app, gen)
}

func (a rolloutAgents) Connected(host string) bool { return a.s.AgentConnected(host) }

func (a rolloutAgents) Heartbeat(host string) (*rollwavev1.Heartbeat, time.Time, bool) {
	hb, at, ok := a.s.AgentHeartbeat(host)
	return hb, at, ok && hb != nil
}

func (a rolloutAgents) Fleet() plan.Fleet { return a.s.fleetForPlanning() }
