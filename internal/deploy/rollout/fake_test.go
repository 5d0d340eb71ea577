package rollout_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/dispatch"
	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/deploy/rollout"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// cluster is a fake coordinator: a real FSM written through Encode and
// ApplyEntry (so every rule of the state machines holds), fake agents,
// and a fake clock.
type cluster struct {
	t         testing.TB
	fsm       *raftfsm.FSM
	idx       uint64
	now       time.Time
	connected map[string]bool
	hbs       map[string]*v1.Heartbeat
	// lastContact, when set for a host, is when its open session last
	// carried a message (a cut link: the session stays, silent); unset
	// means now.
	lastContact    map[string]time.Time
	reverts        []string
	finalizes      []string
	verified       []string
	rehearseOrders []string
	o              *rollout.Orchestrator
	// failWrite, when set, may refuse an orchestrator write before it
	// reaches raft (a leader lost at that moment).
	failWrite func(typ raftfsm.MessageType, m proto.Message) error
}

func newCluster(t testing.TB, hosts map[string]string) *cluster {
	c := &cluster{t: t, fsm: raftfsm.New(nil), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		connected: map[string]bool{}, hbs: map[string]*v1.Heartbeat{}, lastContact: map[string]time.Time{}}
	var hs []*v1.Host
	for id, cell := range hosts {
		hs = append(hs, &v1.Host{Id: id, Cell: cell})
		c.connected[id] = true
	}
	c.must(raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: c.now.UnixNano(), Hosts: hs})
	cfg := rollout.DefaultConfig()
	cfg.Clock = func() time.Time { return c.now }
	cfg.Logger = testutil.Logger(t)
	o, err := rollout.New(cfg, c.fsm.State(), c, c)
	if err != nil {
		t.Fatal(err)
	}
	c.o = o
	return c
}

func (c *cluster) state() *raftfsm.State { return c.fsm.State() }

func (c *cluster) apply(typ raftfsm.MessageType, m proto.Message) error {
	buf, err := raftfsm.Encode(typ, m)
	if err != nil {
		return err
	}
	c.idx++
	_, err = c.fsm.ApplyEntry(c.idx, buf)
	return err
}

func (c *cluster) must(typ raftfsm.MessageType, m proto.Message) {
	c.t.Helper()
	if err := c.apply(typ, m); err != nil {
		c.t.Fatalf("%v: %v", typ, err)
	}
}

// write is a Writer call: the failure seam, then raft.
func (c *cluster) write(typ raftfsm.MessageType, m proto.Message) error {
	if c.failWrite != nil {
		if err := c.failWrite(typ, m); err != nil {
			return err
		}
	}
	return c.apply(typ, m)
}

// Writer.
func (c *cluster) SetReleaseState(_ context.Context, cmd *v1.SetReleaseStateCommand) error {
	return c.write(raftfsm.SetReleaseState, cmd)
}
func (c *cluster) SetPhaseState(_ context.Context, cmd *v1.SetPhaseStateCommand) error {
	return c.write(raftfsm.SetPhaseState, cmd)
}
func (c *cluster) SetReleasePlan(_ context.Context, cmd *v1.SubmitReleaseCommand) error {
	return c.write(raftfsm.SetReleasePlan, cmd)
}
func (c *cluster) SubmitRelease(_ context.Context, cmd *v1.SubmitReleaseCommand) error {
	return c.write(raftfsm.SubmitRelease, cmd)
}
func (c *cluster) AdvancePhase(_ context.Context, cmd *v1.SetReleaseStateCommand) error {
	return c.write(raftfsm.AdvancePhase, cmd)
}
func (c *cluster) SetRegionState(_ context.Context, cmd *v1.SetRegionStateCommand) error {
	return c.write(raftfsm.SetRegionState, cmd)
}
func (c *cluster) UpdateAssignments(_ context.Context, cmd *v1.UpdateAssignmentsCommand) error {
	return c.write(raftfsm.UpdateAssignments, cmd)
}
func (c *cluster) AppendEvents(_ context.Context, cmd *v1.AppendEventsCommand) error {
	return c.write(raftfsm.AppendEvents, cmd)
}

func (c *cluster) StartChainStep(_ context.Context, cmd *v1.StartChainStepCommand) error {
	return c.write(raftfsm.StartChainStep, cmd)
}
func (c *cluster) SetChainState(_ context.Context, cmd *v1.SetChainStateCommand) error {
	return c.write(raftfsm.SetChainState, cmd)
}

// Agents.
func (c *cluster) AssignHosts(releaseID string, phase int32, hosts []string) ([]*v1.Assignment, error) {
	rel := c.state().Release(releaseID)
	var out []*v1.Assignment
	for _, h := range hosts {
		gen := uint64(1)
		if cur := c.state().Assignment(h, rel.GetSpec().GetApp()); cur != nil {
			gen = cur.GetGeneration() + 1
		}
		out = append(out, &v1.Assignment{Host: h, App: rel.GetSpec().GetApp(), Generation: gen, ReleaseId: releaseID, Phase: phase,
			Version: rel.GetSpec().GetVersion(), CreatedUnixNano: c.now.UnixNano()})
	}
	return out, c.apply(raftfsm.CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: c.now.UnixNano(), Assignments: out,
		Events: []*v1.Event{dispatch.AssignedEvent(rel, phase, out)}})
}
func (c *cluster) OrderRevert(host, app string, gen uint64, reason string) error {
	c.reverts = append(c.reverts, host)
	return c.apply(raftfsm.UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: c.now.UnixNano(), Updates: []*v1.AssignmentUpdate{
		{Host: host, App: app, Generation: gen, State: v1.AssignmentState_ASSIGNMENT_STATE_REVERTING, Reason: reason}}})
}
func (c *cluster) OrderFinalize(host, app string, gen uint64) bool {
	c.finalizes = append(c.finalizes, host)
	return c.connected[host]
}
func (c *cluster) NotifyVerified(host, app string, gen uint64) bool {
	c.verified = append(c.verified, host)
	return c.connected[host]
}
func (c *cluster) OrderRehearse(host, app string, gen uint64, maxRollback time.Duration) bool {
	c.rehearseOrders = append(c.rehearseOrders, host)
	return c.connected[host]
}
func (c *cluster) Connected(host string) bool { return c.connected[host] }
func (c *cluster) Heartbeat(host string) (*v1.Heartbeat, time.Time, bool) {
	hb, ok := c.hbs[host]
	at, set := c.lastContact[host]
	if !set {
		at = c.now
	}
	return hb, at, ok && c.connected[host]
}
func (c *cluster) Fleet() plan.Fleet {
	var f plan.Fleet
	for _, h := range c.state().Hosts() {
		f.Hosts = append(f.Hosts, plan.HostInfo{ID: h.GetId(), Cell: h.GetCell()})
	}
	f.Cells = c.state().Cells()
	return f
}

// settle steps the release until raft stops changing (bounded).
func (c *cluster) settle(id string) {
	c.t.Helper()
	for i := 0; i < 50; i++ {
		before := c.state().AppliedIndex()
		if _, err := c.o.StepForTest(context.Background(), id); err != nil {
			c.t.Fatalf("step: %v", err)
		}
		if c.state().AppliedIndex() == before {
			return
		}
	}
	c.t.Fatal("release did not settle within 50 steps")
}

func (c *cluster) advance(d time.Duration) { c.now = c.now.Add(d) }

// report moves a host's current assignment along the happy path to want.
func (c *cluster) report(host string, want v1.AssignmentState) {
	c.t.Helper()
	a := c.state().Assignment(host, "api")
	path := []v1.AssignmentState{
		v1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED, v1.AssignmentState_ASSIGNMENT_STATE_STAGING,
		v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, v1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED,
	}
	at := -1
	for i, s := range path {
		if s == a.GetState() {
			at = i
		}
	}
	if !slices.Contains(path, want) {
		at = -1 // off the happy path: one update
	}
	var ups []*v1.AssignmentUpdate
	for i := at + 1; i < len(path) && at >= 0; i++ {
		ups = append(ups, &v1.AssignmentUpdate{Host: host, App: "api", Generation: a.GetGeneration(), State: path[i], Reason: "agent"})
		if path[i] == want {
			break
		}
	}
	if len(ups) == 0 || ups[len(ups)-1].GetState() != want {
		ups = append(ups, &v1.AssignmentUpdate{Host: host, App: "api", Generation: a.GetGeneration(), State: want, Reason: "agent says " + want.String()})
	}
	c.must(raftfsm.UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: c.now.UnixNano(), Updates: ups})
	// The heartbeat says which version the active slot runs.
	version := "1"
	switch want {
	case v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, v1.AssignmentState_ASSIGNMENT_STATE_BAKING,
		v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED:
		version = a.GetVersion()
	}
	c.hbs[host] = &v1.Heartbeat{Host: &v1.HostMetrics{MemPercent: 40},
		Slots: []*v1.SlotMetrics{{App: "api", Version: version, Healthy: true, CpuPercent: 10}}}
}

func (c *cluster) release(id string) *v1.Release { return c.state().Release(id) }

func (c *cluster) phase(id string, i int) *v1.Phase { return c.release(id).GetPhases()[i] }

func (c *cluster) events(id, kind string) []*v1.Event {
	var out []*v1.Event
	for _, e := range c.state().Events(id, 0, 0) {
		if e.GetKind() == kind {
			out = append(out, e)
		}
	}
	return out
}

// submit stores and starts a release of app "api" version "2" with the
// given phases (host lists) and spec tweaks.
func (c *cluster) submit(id string, phases [][]string, tweak func(*v1.ReleaseSpec)) {
	c.t.Helper()
	sp := &v1.ReleaseSpec{Name: id, App: "api", Version: "2",
		Health:   &v1.HealthSpec{MinHealthyTimeMs: 1000, HealthyDeadlineMs: 60_000},
		Gates:    &v1.GatesSpec{},
		Rollback: &v1.RollbackSpec{OnFailure: "all"},
	}
	if tweak != nil {
		tweak(sp)
	}
	var ps []*v1.Phase
	for i, hs := range phases {
		cells := map[string]bool{}
		var cl []string
		for _, h := range hs {
			if cell := c.state().Host(h).GetCell(); !cells[cell] {
				cells[cell] = true
				cl = append(cl, cell)
			}
		}
		approval := false
		for _, a := range sp.GetApproval().GetAfterPhases() {
			approval = approval || a == int32(i)
		}
		ps = append(ps, &v1.Phase{Index: int32(i), Hosts: hs, Cells: cl, BakeMs: int64(60_000 >> i), ApprovalRequired: approval})
	}
	c.must(raftfsm.SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: c.now.UnixNano(), Actor: "test",
		Release: &v1.Release{Id: id, Spec: sp, Phases: ps}})
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: id,
		State: v1.ReleaseState_RELEASE_STATE_RUNNING, Actor: "test", CurrentPhase: -1})
}

func (c *cluster) wantRelease(id string, want v1.ReleaseState) {
	c.t.Helper()
	if r := c.release(id); r.GetState() != want {
		c.t.Fatalf("release %s is %s (%s), want %s\n%s", id, r.GetState(), r.GetReason(), want, c.dumpEvents(id))
	}
}

func (c *cluster) wantPhase(id string, i int, want v1.PhaseState) {
	c.t.Helper()
	if p := c.phase(id, i); p.GetState() != want {
		c.t.Fatalf("phase %d is %s (%s), want %s\n%s", i, p.GetState(), p.GetReason(), want, c.dumpEvents(id))
	}
}

func (c *cluster) dumpEvents(id string) string {
	s := ""
	for _, e := range c.state().Events(id, 0, 0) {
		s += fmt.Sprintf("  %d %s phase=%d host=%s %s %v\n", e.GetSeq(), e.GetKind(), e.GetPhase(), e.GetHost(), e.GetMessage(), e.GetEvidence())
	}
	return s
}
