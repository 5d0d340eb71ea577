package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/rollwave/rollwave/internal/freeze"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func (o *operatorService) AddFreeze(ctx context.Context, req *rollwavev1.AddFreezeRequest) (*rollwavev1.AddFreezeResponse, error) {
	if req.GetReason() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "a freeze window needs a -reason, so others know why")
	}
	if req.GetCron() == "" {
		if req.GetFromUnixNano() <= 0 || req.GetToUnixNano() <= 0 {
			return nil, errorf(raftfsm.ErrInvalid, "a freeze window needs both -from and -to, or a -cron calendar with -duration")
		}
		if req.GetToUnixNano() <= req.GetFromUnixNano() {
			return nil, errorf(raftfsm.ErrInvalid, "freeze window ends (%s) before it starts (%s)",
				time.Unix(0, req.GetToUnixNano()).UTC().Format(time.RFC3339), time.Unix(0, req.GetFromUnixNano()).UTC().Format(time.RFC3339))
		}
	}
	candidate := windowOf(req, "", "", 0)
	if err := freeze.Validate(candidate, time.Now()); err != nil {
		return nil, errorf(raftfsm.ErrInvalid, "freeze window: %v", err)
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.AddFreeze,
		func(ctx context.Context, req *rollwavev1.AddFreezeRequest) (*rollwavev1.AddFreezeResponse, error) {
			if n := len(o.s.fsm.State().Freezes()); n >= maxFreezeWindows {
				return nil, errorf(raftfsm.ErrConflict, "there are already %d freeze windows (at most %d); remove some first (rollwave freeze list)", n, maxFreezeWindows)
			}
			now := time.Now().UnixNano()
			w := windowOf(req, newID("frz"), actorOf(ctx, req.GetActor()), now)
			if err := o.s.applyErr(raftfsm.AddFreeze, &rollwavev1.AddFreezeCommand{TimeUnixNano: now, Window: w}); err != nil {
				return nil, err
			}
			return &rollwavev1.AddFreezeResponse{Window: w}, nil
		})
}

// maxFreezeWindows bounds the windows stored, and so the calendar every
// agent is sent (agents accept up to 4,096).
const maxFreezeWindows = 1000

// windowOf is the window an AddFreeze request asks for.
func windowOf(req *rollwavev1.AddFreezeRequest, id, actor string, now int64) *rollwavev1.FreezeWindow {
	return &rollwavev1.FreezeWindow{
		Id: id, FromUnixNano: req.GetFromUnixNano(), ToUnixNano: req.GetToUnixNano(),
		Reason: req.GetReason(), CreatedBy: actor, CreatedUnixNano: now,
		Cron: req.GetCron(), DurationMs: req.GetDurationMs(), Timezone: req.GetTimezone(),
		Apps: req.GetApps(), Cells: req.GetCells(),
	}
}

// OverrideFreeze lets one live release start phases inside freeze windows
// (admin only, aclMethodRoles); the FSM records freeze.overridden with the
// actor and reason in the same entry.
func (o *operatorService) OverrideFreeze(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	if req.GetReason() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "a freeze override needs a -reason; it is audited")
	}
	return o.runAction(ctx, req, releaseAction{"override-freeze", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if req.GetActor() == "" {
			return errorf(raftfsm.ErrInvalid, "a freeze override of release %q needs an actor (the CLI sends your user name; with ACLs, the token's name)", r.GetId())
		}
		return s.applyErr(raftfsm.OverrideFreeze, &rollwavev1.OverrideFreezeCommand{
			TimeUnixNano: time.Now().UnixNano(), ReleaseId: r.GetId(), Actor: req.GetActor(), Reason: req.GetReason(),
		})
	}}, rollwavev1.OperatorServiceClient.OverrideFreeze)
}

// newID returns prefix-<8 random hex digits>. Ids are made by the proposer,
// never inside Apply, so every replica stores the same one.
func newID(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func (o *operatorService) ListFreezes(ctx context.Context, _ *rollwavev1.ListFreezesRequest) (*rollwavev1.ListFreezesResponse, error) {
	on, reason := o.s.fsm.State().GlobalFreeze()
	now := time.Now()
	ws := o.s.fsm.State().Freezes()
	resp := &rollwavev1.ListFreezesResponse{Windows: ws, Global: on, GlobalReason: reason, NowUnixNano: now.UnixNano()}
	for _, w := range ws {
		resp.Schedules = append(resp.Schedules, freeze.ScheduleOf(w, now))
	}
	return resp, nil
}

func (o *operatorService) RemoveFreeze(ctx context.Context, req *rollwavev1.RemoveFreezeRequest) (*rollwavev1.RemoveFreezeResponse, error) {
	if req.GetId() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "remove needs a freeze window id; see 'rollwave freeze list'")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.RemoveFreeze,
		func(ctx context.Context, req *rollwavev1.RemoveFreezeRequest) (*rollwavev1.RemoveFreezeResponse, error) {
			found := false
			for _, w := range o.s.fsm.State().Freezes() {
				found = found || w.GetId() == req.GetId()
			}
			if !found {
				return nil, errorf(raftfsm.ErrNotFound, "no freeze window with id %q", req.GetId())
			}
			if err := o.s.applyErr(raftfsm.RemoveFreeze, &rollwavev1.RemoveFreezeCommand{TimeUnixNano: time.Now().UnixNano(), Id: req.GetId(), Actor: actorOf(ctx, req.GetActor())}); err != nil {
				return nil, err
			}
			return &rollwavev1.RemoveFreezeResponse{}, nil
		})
}

func (o *operatorService) SetGlobalFreeze(ctx context.Context, req *rollwavev1.SetGlobalFreezeRequest) (*rollwavev1.SetGlobalFreezeResponse, error) {
	if req.GetOn() && req.GetReason() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "turning the global freeze on needs a -reason")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.SetGlobalFreeze,
		func(ctx context.Context, req *rollwavev1.SetGlobalFreezeRequest) (*rollwavev1.SetGlobalFreezeResponse, error) {
			if err := o.s.applyErr(raftfsm.SetGlobalFreeze, &rollwavev1.SetGlobalFreezeCommand{
				TimeUnixNano: time.Now().UnixNano(), On: req.GetOn(), Reason: req.GetReason(), Actor: actorOf(ctx, req.GetActor()),
			}); err != nil {
				return nil, err
			}
			return &rollwavev1.SetGlobalFreezeResponse{}, nil
		})
}
