package raftfsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// Short names for enum values used throughout the tests.
const (
	rsPending  = v1.ReleaseState_RELEASE_STATE_PENDING
	rsRunning  = v1.ReleaseState_RELEASE_STATE_RUNNING
	rsPaused   = v1.ReleaseState_RELEASE_STATE_PAUSED
	rsAwaiting = v1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL
	rsSucceed  = v1.ReleaseState_RELEASE_STATE_SUCCEEDED
	rsRollBack = v1.ReleaseState_RELEASE_STATE_ROLLING_BACK
	rsRolled   = v1.ReleaseState_RELEASE_STATE_ROLLED_BACK
	rsAborted  = v1.ReleaseState_RELEASE_STATE_ABORTED
	rsFailed   = v1.ReleaseState_RELEASE_STATE_FAILED

	psPending   = v1.PhaseState_PHASE_STATE_PENDING
	psDeploying = v1.PhaseState_PHASE_STATE_DEPLOYING
	psBaking    = v1.PhaseState_PHASE_STATE_BAKING
	psVerified  = v1.PhaseState_PHASE_STATE_VERIFIED
	psFailed    = v1.PhaseState_PHASE_STATE_FAILED

	asAssigned  = v1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED
	asStaging   = v1.AssignmentState_ASSIGNMENT_STATE_STAGING
	asSwitched  = v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED
	asBaking    = v1.AssignmentState_ASSIGNMENT_STATE_BAKING
	asHealthy   = v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY
	asFinalized = v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED
	asFailed    = v1.AssignmentState_ASSIGNMENT_STATE_FAILED
	asReverting = v1.AssignmentState_ASSIGNMENT_STATE_REVERTING
	asReverted  = v1.AssignmentState_ASSIGNMENT_STATE_REVERTED
	asIsolated  = v1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED
	asAbandoned = v1.AssignmentState_ASSIGNMENT_STATE_ABANDONED
)

// t0 is the fixed "now" the test commands carry.
const t0 = int64(1_780_000_000_000_000_000)

// cmd is one command to apply in a test.
type cmd struct {
	t MessageType
	m proto.Message
}

func encodeCmd(t testing.TB, c cmd) []byte {
	t.Helper()
	b, err := Encode(c.t, c.m)
	if err != nil {
		t.Fatalf("encode %v: %v", c.t, err)
	}
	return b
}

// apply runs c through the full FSM.Apply path at the next index.
func apply(t testing.TB, f *FSM, c cmd) interface{} {
	t.Helper()
	idx := f.State().AppliedIndex() + 1
	return f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: encodeCmd(t, c)})
}

// mustApply applies commands that must succeed.
func mustApply(t testing.TB, f *FSM, cmds ...cmd) {
	t.Helper()
	for _, c := range cmds {
		if res := apply(t, f, c); res != nil {
			if _, ok := res.(*UpdateResult); !ok {
				t.Fatalf("apply %v: %v", c.t, res)
			}
		}
	}
}

func asRejected(t testing.TB, res interface{}) *RejectedError {
	t.Helper()
	err, ok := res.(error)
	if !ok {
		t.Fatalf("result %T (%v), want an error", res, res)
	}
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v is %T, want *RejectedError", err, err)
	}
	return rej
}

// dumpNoIndex is Dump without the applied index, which moves on rejections too.
func dumpNoIndex(s *State) string {
	d := s.Dump()
	_, rest, _ := strings.Cut(d, "\n")
	return rest
}

// ---- command builders

func hostsCmd(cell string, ids ...string) cmd {
	c := &v1.UpsertHostsCommand{TimeUnixNano: t0}
	for _, id := range ids {
		c.Hosts = append(c.Hosts, &v1.Host{Id: id, Cell: cell, Region: "eu", Address: id + ":7070"})
	}
	return cmd{UpsertHosts, c}
}

func cellCmd(name string, risk int32, crit string, users int64) cmd {
	return cmd{SetCell, &v1.SetCellCommand{TimeUnixNano: t0, Actor: "ops",
		Cell: &v1.Cell{Name: name, Risk: risk, Criticality: crit, Users: users}}}
}

// releaseMsg is a release of app with n phases; phase 1 needs approval.
func releaseMsg(id, app string, n int) *v1.Release {
	r := &v1.Release{Id: id, Spec: &v1.ReleaseSpec{Name: id, App: app, Version: "v-" + id}}
	for i := 0; i < n; i++ {
		r.Phases = append(r.Phases, &v1.Phase{Index: int32(i), Hosts: []string{"h1"}, BakeMs: 60_000, ApprovalRequired: i == 1})
	}
	return r
}

func submitCmd(id, app string, phases int) cmd {
	return cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: t0, Actor: "alice", Release: releaseMsg(id, app, phases)}}
}

func relStateCmd(id string, st v1.ReleaseState) cmd {
	return cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 10, ReleaseId: id, State: st, Reason: "test", Actor: "alice", CurrentPhase: -1}}
}

func phaseCmd(id string, idx int32, st v1.PhaseState) cmd {
	return cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: t0 + 20, ReleaseId: id, Index: idx, State: st, Reason: "test", BakeDeadlineUnixNano: t0 + 1000}}
}

func assignCmd(host, app, rel string, gen uint64) cmd {
	return cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: t0 + 30, Assignments: []*v1.Assignment{
		{Host: host, App: app, Generation: gen, ReleaseId: rel, Version: "v-" + rel, TargetSlot: v1.Slot_SLOT_GREEN},
	}}}
}

func updateCmd(host, app string, gen uint64, st v1.AssignmentState) cmd {
	return cmd{UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: t0 + 40, Updates: []*v1.AssignmentUpdate{
		{Host: host, App: app, Generation: gen, State: st, Reason: "test"},
	}}}
}

// base is the usual starting point: two hosts, their cell, one running
// release of "api" with two phases.
func base() []cmd {
	return []cmd{
		hostsCmd("eu-1", "h1", "h2"),
		cellCmd("eu-1", 1, "low", 100),
		submitCmd("api-1", "api", 2),
		relStateCmd("api-1", rsRunning),
	}
}

func with(cmds ...[]cmd) []cmd {
	var out []cmd
	for _, c := range cmds {
		out = append(out, c...)
	}
	return out
}

func one(c ...cmd) []cmd { return c }

func nopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }

// plainOf copies s into maps, for tests that compare states field by field.
func plainOf(s *State) *plain {
	v, idx := s.pointInTime()
	return v.toPlain(idx)
}

// plainState loads p into a State; p's objects are shared, read-only.
func plainState(p *plain) *State {
	s := NewState()
	s.db.Store(p.load())
	s.appliedIndex.Store(p.appliedIndex)
	return s
}
