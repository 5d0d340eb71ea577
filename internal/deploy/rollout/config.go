package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/health/extgate"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Config tunes the orchestrator.
type Config struct {
	// Tick is how often each release is reconciled when nothing changes
	// in raft (deadlines, heartbeats). Default 250ms.
	Tick time.Duration
	// UnreachableAfter: a host with a live assignment and no session and
	// no heartbeat for this long counts as unreachable. Default 10s (five
	// heartbeats of 2s).
	UnreachableAfter time.Duration
	// HostGrace is added to healthy_deadline + min_healthy_time when the
	// orchestrator decides a host that never became healthy has failed
	// (the agent normally decides first). Default 5s.
	HostGrace time.Duration
	// FinalizeTimeout bounds the wait for hosts to report finalized
	// after the last phase. Default 1m.
	FinalizeTimeout time.Duration
	// FinalizeResend is how long after a finalize order it is sent again
	// to a host that has not finalized; each further resend to a host
	// that took the order waits twice as long, up to 8 × FinalizeResend
	// (a host whose session was down gets it again after FinalizeResend).
	// Default 2s.
	FinalizeResend time.Duration
	// RevertTimeout bounds the wait for ordered reverts; hosts still not
	// reverted then make the release failed. Default 2m.
	RevertTimeout time.Duration
	// RevertSettle: a host still "reverting" this long after the order,
	// connected and serving another version than the release's, is taken
	// as back (an agent that never got the assignment ignores its revert).
	// Default 10s.
	RevertSettle time.Duration
	// RevertAttempts bounds revert orders per host and generation.
	// Default 3.
	RevertAttempts int
	// RetryMin and RetryMax bound the backoff (with full jitter) after a
	// failed write. Defaults 200ms and 5s.
	RetryMin, RetryMax time.Duration
	// SampleWindow is how many samples per host and metric are kept for
	// the baseline comparison. Default 4096.
	SampleWindow int
	// BaselineMinEffect is the relative worsening of the median that
	// counts as clearly worse (see health.BaselineConfig). Default 0.10.
	BaselineMinEffect float64
	// BaselineLatencyFloor is the smallest slowdown of the canary's median
	// request latency that the baseline comparison counts, whatever its
	// relative size (see health.BaselineConfig.MinAbsEffect). Default 2ms.
	BaselineLatencyFloor time.Duration
	// MetricGates are the leader's settings for external gates (the
	// credentials directory, the response cap, the retry backoff).
	MetricGates extgate.Options
	// ConvergeEvery is how often the leader looks for drifted hosts of
	// apps with converge = "auto". Default 5s.
	ConvergeEvery time.Duration
	// ConvergeAttempts bounds automatic convergence releases per host
	// that end without the host finalized; after that the host stays
	// drifted until an operator runs `rollwave release converge`.
	// Default 3.
	ConvergeAttempts int
	// ConvergeBackoffMin and ConvergeBackoffMax bound the wait (full
	// jitter, doubling per failed attempt) before a host's next automatic
	// convergence. Defaults 30s and 10m.
	ConvergeBackoffMin, ConvergeBackoffMax time.Duration
	// Clock returns the time; default time.Now. Tests inject a fake.
	Clock func() time.Time
	// Logger receives the orchestrator's logs; component=rollout is added.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Tick:                 250 * time.Millisecond,
		UnreachableAfter:     10 * time.Second,
		HostGrace:            5 * time.Second,
		FinalizeTimeout:      time.Minute,
		FinalizeResend:       2 * time.Second,
		RevertTimeout:        2 * time.Minute,
		RevertSettle:         10 * time.Second,
		RevertAttempts:       3,
		RetryMin:             200 * time.Millisecond,
		RetryMax:             5 * time.Second,
		SampleWindow:         4096,
		BaselineMinEffect:    0.10,
		BaselineLatencyFloor: 2 * time.Millisecond,
		ConvergeEvery:        5 * time.Second,
		ConvergeAttempts:     3,
		ConvergeBackoffMin:   30 * time.Second,
		ConvergeBackoffMax:   10 * time.Minute,
	}
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Tick", c.Tick}, {"UnreachableAfter", c.UnreachableAfter}, {"FinalizeTimeout", c.FinalizeTimeout},
		{"FinalizeResend", c.FinalizeResend}, {"RevertTimeout", c.RevertTimeout}, {"RevertSettle", c.RevertSettle}, {"RetryMin", c.RetryMin}, {"RetryMax", c.RetryMax},
		{"ConvergeEvery", c.ConvergeEvery}, {"ConvergeBackoffMin", c.ConvergeBackoffMin}, {"ConvergeBackoffMax", c.ConvergeBackoffMax}} {
		if d.v <= 0 {
			return fmt.Errorf("rollout: %s must be positive, got %s", d.name, d.v)
		}
	}
	switch {
	case c.HostGrace < 0:
		return fmt.Errorf("rollout: HostGrace must not be negative, got %s", c.HostGrace)
	case c.RetryMax < c.RetryMin:
		return fmt.Errorf("rollout: RetryMax %s is below RetryMin %s", c.RetryMax, c.RetryMin)
	case c.ConvergeBackoffMax < c.ConvergeBackoffMin:
		return fmt.Errorf("rollout: ConvergeBackoffMax %s is below ConvergeBackoffMin %s", c.ConvergeBackoffMax, c.ConvergeBackoffMin)
	case c.ConvergeAttempts <= 0:
		return fmt.Errorf("rollout: ConvergeAttempts must be positive, got %d", c.ConvergeAttempts)
	case c.RevertAttempts <= 0:
		return fmt.Errorf("rollout: RevertAttempts must be positive, got %d", c.RevertAttempts)
	case c.SampleWindow <= 0:
		return fmt.Errorf("rollout: SampleWindow must be positive, got %d", c.SampleWindow)
	case c.BaselineMinEffect < 0:
		return fmt.Errorf("rollout: BaselineMinEffect must not be negative, got %g", c.BaselineMinEffect)
	case c.BaselineLatencyFloor < 0:
		return fmt.Errorf("rollout: BaselineLatencyFloor must not be negative, got %s", c.BaselineLatencyFloor)
	}
	return nil
}

// Writer is how the orchestrator changes the replicated state. Each call
// commits one raft entry (on the leader) and returns once it is applied;
// a rejection by the FSM comes back as an error and changed nothing. The
// caller fills the command's time. Calls may block up to the raft apply
// timeout.
type Writer interface {
	SetReleaseState(ctx context.Context, cmd *rollwavev1.SetReleaseStateCommand) error
	SetPhaseState(ctx context.Context, cmd *rollwavev1.SetPhaseStateCommand) error
	// SetReleasePlan writes raftfsm.SetReleasePlan (type 15).
	SetReleasePlan(ctx context.Context, cmd *rollwavev1.SubmitReleaseCommand) error
	// SubmitRelease writes raftfsm.SubmitRelease (a convergence release).
	SubmitRelease(ctx context.Context, cmd *rollwavev1.SubmitReleaseCommand) error
	// AdvancePhase writes raftfsm.AdvancePhase (type 16).
	AdvancePhase(ctx context.Context, cmd *rollwavev1.SetReleaseStateCommand) error
	// SetRegionState writes raftfsm.SetRegionState (type 31).
	SetRegionState(ctx context.Context, cmd *rollwavev1.SetRegionStateCommand) error
	UpdateAssignments(ctx context.Context, cmd *rollwavev1.UpdateAssignmentsCommand) error
	AppendEvents(ctx context.Context, cmd *rollwavev1.AppendEventsCommand) error
	// StartChainStep writes raftfsm.StartChainStep (type 28).
	StartChainStep(ctx context.Context, cmd *rollwavev1.StartChainStepCommand) error
	// SetChainState writes raftfsm.SetChainState (type 29).
	SetChainState(ctx context.Context, cmd *rollwavev1.SetChainStateCommand) error
}

// Agents is how the orchestrator gives orders to hosts and learns whether
// they are in contact. Order calls commit their decision to raft first
// (the coordinator's dispatch), then send it if the host is connected.
type Agents interface {
	// AssignHosts creates the next generation on each host for the phase
	// (one raft entry) and sends the orders.
	AssignHosts(releaseID string, phase int32, hosts []string) ([]*rollwavev1.Assignment, error)
	OrderRevert(host, app string, gen uint64, reason string) error
	// OrderFinalize and NotifyVerified only send; false when the host is
	// not connected.
	OrderFinalize(host, app string, gen uint64) bool
	NotifyVerified(host, app string, gen uint64) bool
	// OrderRehearse asks the host to rehearse the rollback of gen
	// (rollback.rehearse); only sends, false when not connected. The
	// result comes back through Orchestrator.ObserveRehearsal.
	OrderRehearse(host, app string, gen uint64, maxRollback time.Duration) bool
	// Connected reports whether the host has a session with this leader.
	Connected(host string) bool
	// Heartbeat returns the host's latest heartbeat and when it came.
	Heartbeat(host string) (*rollwavev1.Heartbeat, time.Time, bool)
	// Fleet lists the hosts a plan may use right now.
	Fleet() plan.Fleet
}
