package coordinator

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/raftfsm"
)

// TestToStatusAndBack: every error kind becomes its gRPC code with the
// message kept, and a follower that receives that status gets the same
// kind back (fromRemote), so errors.Is gives the same answer on both sides.
func TestToStatusAndBack(t *testing.T) {
	rejected := &raftfsm.RejectedError{Type: raftfsm.SetReleaseState, Reason: `release "r" cannot go from pending to paused`, Err: raftfsm.ErrIllegalTransition}
	cases := []struct {
		name string
		err  error
		code codes.Code
		kind error // nil: no kind
		msg  string
	}{
		// The FSM's rejections, bare and wrapped with context.
		{"fsm rejection", rejected, codes.FailedPrecondition, raftfsm.ErrIllegalTransition, rejected.Reason},
		{"wrapped rejection", fmt.Errorf("pause: %w", rejected), codes.FailedPrecondition, raftfsm.ErrIllegalTransition, "pause: " + rejected.Reason},
		// Each kind the coordinator raises itself.
		{"not found", errorf(raftfsm.ErrNotFound, "no release %q", "x"), codes.NotFound, raftfsm.ErrNotFound, `no release "x"`},
		{"exists", errorf(raftfsm.ErrExists, "taken"), codes.AlreadyExists, raftfsm.ErrExists, "taken"},
		{"invalid", withKind(raftfsm.ErrInvalid, errors.New("bad.hcl:1:1: oops")), codes.InvalidArgument, raftfsm.ErrInvalid, "bad.hcl:1:1: oops"},
		{"conflict", errorf(raftfsm.ErrConflict, "busy"), codes.FailedPrecondition, raftfsm.ErrConflict, "busy"},
		{"denied", errorf(raftfsm.ErrPermissionDenied, "no"), codes.PermissionDenied, raftfsm.ErrPermissionDenied, "no"},
		{"not leader", fmt.Errorf("assign: %w", ErrNotLeader), codes.Unavailable, ErrNotLeader, "assign: " + ErrNotLeader.Error()},
		// Raft's failures keep their status and still match raft's errors.
		{"raft", withStatus(codes.Unavailable, raft.ErrLeadershipLost, "leadership changed"), codes.Unavailable, nil, "leadership changed"},
		// A status a handler made stays as it is.
		{"status", status.Error(codes.ResourceExhausted, "slow down"), codes.ResourceExhausted, nil, "slow down"},
		// Context ends get their own codes.
		{"canceled", fmt.Errorf("watch: %w", context.Canceled), codes.Canceled, nil, ""},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, nil, ""},
		// Anything else is Unknown, as gRPC makes it.
		{"plain", errors.New("boom"), codes.Unknown, nil, "boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := toStatus(tc.err)
			st := status.Convert(wire)
			if st.Code() != tc.code || (tc.msg != "" && st.Message() != tc.msg) {
				t.Fatalf("toStatus: %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
			if tc.kind == nil {
				return
			}
			back := fromRemote(wire)
			if !errors.Is(back, tc.kind) {
				t.Fatalf("fromRemote(%v) does not match %v", wire, tc.kind)
			}
			if got := status.Convert(toStatus(back)); got.Code() != tc.code || got.Message() != st.Message() {
				t.Fatalf("relayed by a follower: %v %q, want %v %q", got.Code(), got.Message(), tc.code, st.Message())
			}
		})
	}
	if err := notLeaderf("assign hosts"); !errors.Is(err, ErrNotLeader) || status.Code(toStatus(err)) != codes.Unavailable {
		t.Errorf("notLeaderf: %v does not match ErrNotLeader as Unavailable", err)
	}
	if !errors.Is(withStatus(codes.Unavailable, raft.ErrLeadershipLost, "x"), raft.ErrLeadershipLost) {
		t.Error("a raft failure no longer matches raft.ErrLeadershipLost")
	}
	// A status without the ErrorInfo detail (an older leader) still gets
	// the kind its code stands for; Unavailable gets none.
	if err := fromRemote(status.Error(codes.NotFound, "gone")); !errors.Is(err, raftfsm.ErrNotFound) {
		t.Errorf("NotFound without detail: %v does not match raftfsm.ErrNotFound", err)
	}
	if err := fromRemote(status.Error(codes.Unavailable, "dial")); errors.Is(err, ErrNotLeader) {
		t.Errorf("an unreachable leader reads as ErrNotLeader: %v", err)
	}
}
