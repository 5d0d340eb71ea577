package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func (o *operatorService) AddFreeze(ctx context.Context, req *rollwavev1.AddFreezeRequest) (*rollwavev1.AddFreezeResponse, error) {
	if req.GetFromUnixNano() <= 0 || req.GetToUnixNano() <= 0 {
		return nil, errorf(raftfsm.ErrInvalid, "a freeze window needs both -from and -to")
	}
	if req.GetToUnixNano() <= req.GetFromUnixNano() {
		return nil, errorf(raftfsm.ErrInvalid, "freeze window ends (%s) before it starts (%s)",
			time.Unix(0, req.GetToUnixNano()).UTC().Format(time.RFC3339), time.Unix(0, req.GetFromUnixNano()).UTC().Format(time.RFC3339))
	}
	if req.GetReason() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "a freeze window needs a -reason, so others know why")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.AddFreeze,
		func(ctx context.Context, req *rollwavev1.AddFreezeRequest) (*rollwavev1.AddFreezeResponse, error) {
			now := time.Now().UnixNano()
			w := &rollwavev1.FreezeWindow{
				Id: newID("frz"), FromUnixNano: req.GetFromUnixNano(), ToUnixNano: req.GetToUnixNano(),
				Reason: req.GetReason(), CreatedBy: actorOf(ctx, req.GetActor()), CreatedUnixNano: now,
			}
			if err := o.s.applyErr(raftfsm.AddFreeze, &rollwavev1.AddFreezeCommand{TimeUnixNano: now, Window: w}); err != nil {
				return nil, err
			}
			return &rollwavev1.AddFreezeResponse{Window: w}, nil
		})
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
	return &rollwavev1.ListFreezesResponse{Windows: o.s.fsm.State().Freezes(), Global: on, GlobalReason: reason}, nil
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
