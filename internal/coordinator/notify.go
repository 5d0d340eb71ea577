package coordinator

import (
	"context"

	"github.com/rollwave/rollwave/internal/notify"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/version"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// setupNotify creates the notification sender (internal/notify) and runs
// it in every leadership term of this server, after the barrier: a term
// started with goLeader, so stepping down stops every delivery goroutine
// before the next term can start. Its figures are on /metrics.
func (s *Server) setupNotify() error {
	cfg := s.cfg.Notify
	cfg.Logger = s.cfg.logger().With("node", s.cfg.NodeID)
	if cfg.UserAgent == "" || cfg.UserAgent == notify.DefaultConfig().UserAgent {
		cfg.UserAgent = "rollwave-notify/" + version.Version
	}
	n, err := notify.New(cfg, s.fsm.State(), notifyWriter{s})
	if err != nil {
		return err
	}
	s.notifier = n
	if !n.Enabled() {
		return nil
	}
	s.metrics.reg.MustRegister(n)
	s.AddLeaderHook(func(ctx context.Context, leader bool) {
		if leader {
			goLeader(ctx, func() { n.Run(ctx) })
		}
	})
	return nil
}

// notifyWriter is notify.Writer: one SetNotifyCursors entry per call,
// with the ignore flag (servers that predate notifications skip it).
type notifyWriter struct{ s *Server }

func (w notifyWriter) SetNotifyCursors(_ context.Context, cmd *rollwavev1.SetNotifyCursorsCommand) error {
	return w.s.applyErr(raftfsm.SetNotifyCursors|raftfsm.IgnoreUnknownTypeFlag, cmd)
}

// NotifyStatus reports each notification target's delivery state as the
// leader sees it (forwarded from followers: attempts and errors live only
// in the leader's memory).
func (o *operatorService) NotifyStatus(ctx context.Context, req *rollwavev1.NotifyStatusRequest) (*rollwavev1.NotifyStatusResponse, error) {
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.NotifyStatus,
		func(context.Context, *rollwavev1.NotifyStatusRequest) (*rollwavev1.NotifyStatusResponse, error) {
			return &rollwavev1.NotifyStatusResponse{Targets: o.s.notifier.Status(), LeaderId: o.s.cfg.NodeID}, nil
		})
}
