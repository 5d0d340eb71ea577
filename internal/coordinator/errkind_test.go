package coordinator_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestErrorKindsBecomeGRPCCodes: clients see the kind of a refusal as its
// gRPC code on the leader and through a follower alike, and inside the
// server the error still matches the raftfsm sentinel, across the
// follower → leader forwarding path too.
func TestErrorKindsBecomeGRPCCodes(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	follower := c.Followers()[0]
	submit := &rollwavev1.SubmitReleaseRequest{SourceName: "api-1.hcl", Source: specSource("api-1", "api"), Actor: "test"}
	if _, err := c.Client(follower).SubmitRelease(ctx(t), submit); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(specSource("x-1", "x")), `version = "1.0.0"`, `version = ""`, 1)

	for _, s := range []*coordinator.Server{leader, follower} {
		cl := c.Client(s)
		cases := []struct {
			what string
			err  func() error
			want codes.Code
		}{
			// A read of an unknown id.
			{"get an unknown release", func() error {
				_, err := cl.GetRelease(ctx(t), &rollwavev1.GetReleaseRequest{Id: "nope"})
				return err
			}, codes.NotFound},
			// The same release id twice.
			{"submit api-1 again", func() error { _, err := cl.SubmitRelease(ctx(t), submit); return err }, codes.AlreadyExists},
			// A spec that does not validate.
			{"submit a bad spec", func() error {
				_, err := cl.SubmitRelease(ctx(t), &rollwavev1.SubmitReleaseRequest{SourceName: "bad.hcl", Source: []byte(bad)})
				return err
			}, codes.InvalidArgument},
			// An action on a release in the wrong state (pending cannot pause).
			{"pause a pending release", func() error {
				_, err := cl.PauseRelease(ctx(t), &rollwavev1.ReleaseActionRequest{Id: "api-1", Actor: "test"})
				return err
			}, codes.FailedPrecondition},
			// Another kind of object, another handler.
			{"remove an unknown freeze window", func() error {
				_, err := cl.RemoveFreeze(ctx(t), &rollwavev1.RemoveFreezeRequest{Id: "fw-nope", Actor: "test"})
				return err
			}, codes.NotFound},
		}
		for _, tc := range cases {
			err := tc.err()
			if got := status.Code(err); got != tc.want {
				t.Errorf("%s on %s: code %v (%v), want %v", tc.what, s.NodeID(), got, err, tc.want)
			}
		}
	}

	// Inside the server, through the forwarding path: the follower's handler
	// gets the leader's refusal with its kind.
	op := coordinator.OperatorForTest(follower)
	_, err := op.SubmitRelease(ctx(t), submit)
	if !errors.Is(err, raftfsm.ErrExists) {
		t.Errorf("forwarded duplicate submit: %v (%T) does not match raftfsm.ErrExists", err, err)
	}
	_, err = op.PauseRelease(ctx(t), &rollwavev1.ReleaseActionRequest{Id: "api-1", Actor: "test"})
	if !errors.Is(err, raftfsm.ErrIllegalTransition) {
		t.Errorf("forwarded pause of a pending release: %v (%T) does not match raftfsm.ErrIllegalTransition", err, err)
	}
	if errors.Is(err, raftfsm.ErrConflict) {
		t.Errorf("forwarded pause of a pending release matches raftfsm.ErrConflict too: %v", err)
	}
	// And a write refused by the FSM on the leader keeps its kind.
	_, err = leader.Apply(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{
		TimeUnixNano: time.Now().UnixNano(), Actor: "test",
		Release: &rollwavev1.Release{Id: "api-1", Spec: &rollwavev1.ReleaseSpec{App: "api"}},
	})
	var rej *raftfsm.RejectedError
	if !errors.Is(err, raftfsm.ErrExists) || !errors.As(err, &rej) || rej.Type != raftfsm.SubmitRelease {
		t.Errorf("Apply of a duplicate release: %v (%T), want a RejectedError of SubmitRelease matching raftfsm.ErrExists", err, err)
	}
}

// A `release start` whose first attempt was cut off between the submit
// entry and the start entry is retried by the client with the same spec:
// the retry starts the pending release instead of answering "exists
// already" and leaving it pending. Another spec under the same name, or a
// plain submit, is still refused as a duplicate.
func TestRetriedStartStartsItsPendingRelease(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	cl := c.Client(leader)
	submit := &rollwavev1.SubmitReleaseRequest{SourceName: "api-1.hcl", Source: specSource("api-1", "api"), Actor: "test"}
	if _, err := cl.SubmitRelease(ctx(t), submit); err != nil {
		t.Fatal(err)
	}
	other := &rollwavev1.SubmitReleaseRequest{SourceName: "api-1.hcl", Source: append(specSource("api-1", "api"), "\n# edited\n"...), Actor: "test", Start: true}
	if _, err := cl.SubmitRelease(ctx(t), other); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("start of another spec named api-1: %v, want AlreadyExists", err)
	}
	if r := leader.FSM().State().Release("api-1"); r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_PENDING {
		t.Fatalf("a refused start changed the release: %s", r.GetState())
	}
	if _, err := cl.SubmitRelease(ctx(t), submit); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("plain resubmit: %v, want AlreadyExists", err)
	}
	retry := &rollwavev1.SubmitReleaseRequest{SourceName: submit.SourceName, Source: submit.Source, Actor: "test", Start: true}
	if _, err := cl.SubmitRelease(ctx(t), retry); err != nil {
		t.Fatalf("retried start of the pending release: %v", err)
	}
	if r := leader.FSM().State().Release("api-1"); r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_PENDING {
		t.Fatalf("the retried start left api-1 pending")
	}
	found := false
	for _, e := range leader.FSM().State().Events("api-1", 0, 0) {
		found = found || strings.Contains(e.GetMessage(), "started on submit (retried)")
	}
	if !found {
		t.Fatalf("no event says the release was started by the retried start: %v", leader.FSM().State().Events("api-1", 0, 0))
	}
}

// The CLI retries an action after a leader change; when the first
// attempt committed and only its answer was lost, the retry must succeed
// without writing again, not fail with "cannot go from paused to paused".
func TestRetriedActionsSucceed(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	s := c.Leader(30 * time.Second)
	startOneHostRelease(t, s)
	cl := c.Client(s)
	req := &rollwavev1.ReleaseActionRequest{Id: "r", Actor: "test"}
	type action func(context.Context, *rollwavev1.ReleaseActionRequest, ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
	for _, step := range []struct {
		name string
		do   action
		want []rollwavev1.ReleaseState
	}{
		{"pause", cl.PauseRelease, []rollwavev1.ReleaseState{rollwavev1.ReleaseState_RELEASE_STATE_PAUSED}},
		{"resume", cl.ResumeRelease, []rollwavev1.ReleaseState{rollwavev1.ReleaseState_RELEASE_STATE_RUNNING}},
		{"rollback", cl.RollbackRelease, []rollwavev1.ReleaseState{rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK, rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK}},
		{"abort", cl.AbortRelease, []rollwavev1.ReleaseState{rollwavev1.ReleaseState_RELEASE_STATE_ABORTED}},
	} {
		if _, err := step.do(ctx(t), req); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		before := len(s.FSM().State().Events("r", 0, 0))
		resp, err := step.do(ctx(t), req)
		if err != nil {
			t.Fatalf("retried %s: %v, want success", step.name, err)
		}
		if st := resp.GetRelease().GetState(); !slices.Contains(step.want, st) {
			t.Fatalf("release after the retried %s: %s, want one of %v", step.name, st, step.want)
		}
		if after := len(s.FSM().State().Events("r", 0, 0)); after != before {
			t.Fatalf("the retried %s wrote %d more event(s)", step.name, after-before)
		}
	}
}
