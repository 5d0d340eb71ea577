package coordinator

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/dispatch"
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
	cfg.MetricGates.CredentialsDir = s.cfg.GateCredentialsDir
	cfg.MetricGates.AllowURL = s.allowGateURL
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
	s.metrics.heartbeats.Inc()
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

func (w rolloutWriter) StartChainStep(_ context.Context, cmd *rollwavev1.StartChainStepCommand) error {
	return w.s.applyErr(raftfsm.StartChainStep, cmd)
}

func (w rolloutWriter) SetChainState(_ context.Context, cmd *rollwavev1.SetChainStateCommand) error {
	return w.s.applyErr(raftfsm.SetChainState, cmd)
}

func (w rolloutWriter) SetRegionState(_ context.Context, cmd *rollwavev1.SetRegionStateCommand) error {
	return w.s.applyErr(raftfsm.SetRegionState, cmd)
}

func (w rolloutWriter) UpdateAssignments(_ context.Context, cmd *rollwavev1.UpdateAssignmentsCommand) error {
	return w.s.applyErr(raftfsm.UpdateAssignments, cmd)
}

func (w rolloutWriter) AppendEvents(_ context.Context, cmd *rollwavev1.AppendEventsCommand) error {
	return w.s.applyErr(raftfsm.AppendEvents, cmd)
}

// dispatchRaft is dispatch.AsyncRaft: the local replica and Server.Apply (one
// raft entry per call, bounded by the apply timeout).
type dispatchRaft struct{ s *Server }

var _ dispatch.AsyncRaft = dispatchRaft{}

func (r dispatchRaft) State() *raftfsm.State { return r.s.fsm.State() }

func (r dispatchRaft) Apply(t raftfsm.MessageType, cmd proto.Message) (any, error) {
	return r.s.Apply(t, cmd)
}

// ApplyAsync makes dispatchRaft a dispatch.AsyncRaft: the host writer
// keeps several entries in flight.
func (r dispatchRaft) ApplyAsync(t raftfsm.MessageType, cmd proto.Message) func() (any, error) {
	return r.s.applyAsync(t, cmd)
}

// AssignHosts creates the next generation of the release's app on each
// host, for the given phase, and sends the orders (dispatch.AssignHosts),
// on the leader only.
func (s *Server) AssignHosts(releaseID string, phase int32, hosts []string) ([]*rollwavev1.Assignment, error) {
	if !s.IsLeader() {
		return nil, notLeaderf("assign hosts")
	}
	return s.dispatch.AssignHosts(releaseID, phase, hosts)
}

// OrderRevert records that the host's assignment must revert and tells the
// agent, on the leader only.
func (s *Server) OrderRevert(host, app string, gen uint64, reason string) error {
	if !s.IsLeader() {
		return notLeaderf("order revert")
	}
	return s.dispatch.OrderRevert(host, app, gen, reason)
}

// OrderFinalize tells the agent to finalize (dispatch.OrderFinalize).
func (s *Server) OrderFinalize(host, app string, gen uint64) bool {
	return s.dispatch.OrderFinalize(host, app, gen)
}

// NotifyVerified tells the agent its phase is verified
// (dispatch.NotifyVerified).
func (s *Server) NotifyVerified(host, app string, gen uint64) bool {
	return s.dispatch.NotifyVerified(host, app, gen)
}

// OrderRehearse asks the agent to rehearse a rollback
// (dispatch.OrderRehearse).
func (s *Server) OrderRehearse(host, app string, gen uint64, maxRollback time.Duration) bool {
	return s.dispatch.OrderRehearse(host, app, gen, maxRollback)
}

// AgentConnected reports whether the host has a session with this leader.
func (s *Server) AgentConnected(host string) bool { return s.agents.connected(host) }

// AgentHeartbeat returns the host's latest heartbeat and when it came.
func (s *Server) AgentHeartbeat(host string) (*rollwavev1.Heartbeat, time.Time, bool) {
	sess := s.agents.get(host)
	if sess == nil {
		return nil, time.Time{}, false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.heartbeat, sess.lastContact, true
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

func (a rolloutAgents) OrderRehearse(host, app string, gen uint64, maxRollback time.Duration) bool {
	return a.s.OrderRehearse(host, app, gen, maxRollback)
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
