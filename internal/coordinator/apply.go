package coordinator

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/raftfsm"
)

// Apply encodes a command, commits it through raft on this node (which
// must lead) and returns the FSM's answer. A rejection by the FSM comes back
// as the FSM's *raftfsm.RejectedError, whose kind (errors.Is with
// raftfsm.ErrNotFound, ErrExists, ErrInvalid, ErrConflict, ...) the error
// interceptor turns into the gRPC code (errkind.go); nothing changed.
// Raft's own failures are Unavailable or DeadlineExceeded statuses that
// still match raft's errors (errors.Is(err, raft.ErrNotLeader)).
// Returning only after the entry is committed and applied is what makes an
// acknowledged write durable on a quorum.
func (s *Server) Apply(t raftfsm.MessageType, msg proto.Message) (any, error) {
	return s.applyAsync(t, msg)()
}

// applyAsync is Apply in two halves: it queues the entry in raft now (in
// call order: hashicorp/raft's Apply returns once the entry is queued or
// the apply timeout passes) and returns the function that waits for the
// commit and answers as Apply does. The host writer keeps several
// entries in flight with it (dispatch.AsyncRaft).
func (s *Server) applyAsync(t raftfsm.MessageType, msg proto.Message) func() (any, error) {
	buf, err := raftfsm.Encode(t, msg)
	if err != nil {
		return func() (any, error) {
			return nil, withStatus(codes.Internal, err, "encode %s command: %v", t, err)
		}
	}
	if len(buf) > maxMessageSize {
		return func() (any, error) {
			return nil, errorf(raftfsm.ErrInvalid, "%s command is %d bytes, over the %d byte limit", t, len(buf), maxMessageSize)
		}
	}
	start := time.Now()
	f := s.raft.Apply(buf, s.cfg.ApplyTimeout)
	return func() (any, error) {
		err := f.Error()
		s.metrics.observeApply(t, time.Since(start))
		if err != nil {
			switch {
			case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
				return nil, withStatus(codes.Unavailable, err, "leadership changed while applying %s; retry: %v", t, err)
			case errors.Is(err, raft.ErrEnqueueTimeout):
				return nil, withStatus(codes.DeadlineExceeded, err, "raft did not accept the %s command within %s", t, s.cfg.ApplyTimeout)
			default:
				return nil, withStatus(codes.Unavailable, err, "apply %s: %v", t, err)
			}
		}
		resp := f.Response()
		if rerr, ok := resp.(error); ok && rerr != nil {
			return nil, rerr
		}
		return resp, nil
	}
}

// applyErr is Apply for callers that only care about the error.
func (s *Server) applyErr(t raftfsm.MessageType, msg proto.Message) error {
	_, err := s.Apply(t, msg)
	return err
}
