package coordinator

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// WatchRelease sends the release, its assignments and new events every time
// the replicated state changes, and ends after sending a terminal state.
func (o *operatorService) WatchRelease(req *rollwavev1.WatchReleaseRequest, stream grpc.ServerStreamingServer[rollwavev1.WatchReleaseResponse]) error {
	ctx := stream.Context()
	var (
		lastSeq  uint64
		lastSent *rollwavev1.WatchReleaseResponse
	)
	for {
		// Take the watch before reading, so no change is missed between
		// the read and the wait. Only entries about this release (or the
		// freezes) wake the stream, not every entry of the cluster.
		changed := o.s.fsm.State().WatchRelease(req.GetId())
		changed.Add(o.s.shutdownCh)
		r := o.s.fsm.State().Release(req.GetId())
		if r == nil {
			return status.Errorf(codes.NotFound, "no release with id %q", req.GetId())
		}
		r.Source = nil
		events := o.s.fsm.State().Events(r.GetId(), lastSeq, 10000)
		if n := len(events); n > 0 {
			lastSeq = events[n-1].GetSeq()
		}
		resp := &rollwavev1.WatchReleaseResponse{Release: r, Assignments: o.s.fsm.State().ReleaseAssignments(r.GetId()), Events: events}
		resp.Traffic = releaseTraffic(o.s.fsm.State(), r.GetSpec().GetApp(), resp.GetAssignments())
		if lastSent == nil || len(events) > 0 || !proto.Equal(lastSent.GetRelease(), r) || !protoSlicesEqual(lastSent.GetAssignments(), resp.GetAssignments()) ||
			!protoSlicesEqual(lastSent.GetTraffic(), resp.GetTraffic()) {
			if err := stream.Send(resp); err != nil {
				return err
			}
			lastSent = resp
		}
		if isTerminal(r.GetState()) {
			return nil
		}
		// Host slot facts (traffic weights) do not wake the watch; while
		// a host is dark or mid-step, look again every trafficRefresh.
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if trafficMoving(resp.GetTraffic()) {
			wctx, cancel = context.WithTimeout(ctx, trafficRefresh)
		}
		woke := changed.Wait(wctx)
		cancel()
		if !woke && ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-o.s.shutdownCh:
			return status.Error(codes.Unavailable, "server shutting down")
		default:
		}
	}
}

// isTerminal reports whether a release can no longer change state.
func isTerminal(s rollwavev1.ReleaseState) bool {
	switch s {
	case rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
		rollwavev1.ReleaseState_RELEASE_STATE_ABORTED, rollwavev1.ReleaseState_RELEASE_STATE_FAILED,
		rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED:
		return true
	}
	return false
}

// trafficRefresh is how often a release watch rereads the hosts' traffic
// weights while some host is in a dark phase or a weighted step.
const trafficRefresh = 2 * time.Second

// trafficMoving: some host of ts is dark or mid-step.
func trafficMoving(ts []*rollwavev1.HostTraffic) bool {
	for _, t := range ts {
		if t.GetNewWeight() < 100 {
			return true
		}
	}
	return false
}
