// Package dispatch is the leader's link to agents: it numbers assignment
// generations, commits each order to raft before sending it, resends what
// raft holds to an agent whose session opens, and batches agents' reports
// (registrations, assignment progress) into raft entries (HostWriter).
//
// It reaches raft and the agents only through two narrow interfaces, Raft
// (read the state, apply one entry) and Agents (send to a connected
// host), which the coordinator implements. Leadership is the caller's
// business: the coordinator calls dispatch only while it leads, and runs
// the HostWriter inside the leadership term.
package dispatch

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Raft is the replicated state as dispatch uses it.
type Raft interface {
	// State is the local replica, for reads.
	State() *raftfsm.State
	// Apply commits cmd as one raft entry and returns the FSM's result
	// (an error of a raftfsm kind when the FSM refused it). It blocks
	// until the entry is applied or a bounded timeout passes.
	Apply(t raftfsm.MessageType, cmd proto.Message) (any, error)
}

// Agents reaches connected agents.
type Agents interface {
	// Send queues m on the host's session and reports whether it was
	// queued (false: the host is not connected; it gets its orders again
	// when its session opens). It must not block.
	Send(host string, m *rollwavev1.CoordinatorMessage) bool
}

// Config configures a Dispatcher.
type Config struct {
	// Raft and Agents are required.
	Raft   Raft
	Agents Agents
	// Logger receives warnings (writes that will be retried); nil
	// discards them.
	Logger *slog.Logger
}

// Dispatcher gives agents their orders (Assign, Revert, Finalize,
// Verified) and records what they report. Create it with New.
type Dispatcher struct {
	raft   Raft
	agents Agents
	log    *slog.Logger
	writer *HostWriter
	// appLocks serialise AssignHosts per app (read the generation, then
	// commit): generations are numbered per host and app, so releases of
	// different apps assign side by side. One lock for all made 20
	// releases at once queue behind each other's raft commits.
	appLocks keyedMutex
}

// keyedMutex is one mutex per key, held only while in use (a map entry
// lives while a holder or waiter counts on it). Hand-written: x/sync has
// no keyed lock, and these dozen lines do not justify a dependency.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock takes key's mutex and returns the function that releases it.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// New returns a Dispatcher; its HostWriter runs only when the caller runs
// it (Writer().Run, for the length of a leadership term).
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Raft == nil || cfg.Agents == nil {
		return nil, errors.New("dispatch: Config.Raft and Config.Agents are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Dispatcher{raft: cfg.Raft, agents: cfg.Agents, log: log}
	d.writer = newHostWriter(cfg.Raft, log)
	return d, nil
}

// Writer is the batcher of agents' reports into raft.
func (d *Dispatcher) Writer() *HostWriter { return d.writer }

func (d *Dispatcher) apply(t raftfsm.MessageType, cmd proto.Message) error {
	_, err := d.raft.Apply(t, cmd)
	return err
}

// The dispatch calls are how leader-side work (the rollout orchestrator)
// gives orders to agents: each first commits the decision to raft, then
// sends the order to the host's session if it is connected. An agent that
// is not connected gets its orders again when its session opens
// (ResendOrders), and agents apply orders idempotently by generation.

// AssignHosts creates the next generation of the release's app on each
// host, for the given phase, and sends the orders.
func (d *Dispatcher) AssignHosts(releaseID string, phase int32, hosts []string) ([]*rollwavev1.Assignment, error) {
	rel := d.raft.State().Release(releaseID)
	if rel == nil {
		return nil, &raftfsm.RejectedError{Type: raftfsm.CreateAssignments, Reason: fmt.Sprintf("no release %q", releaseID), Err: raftfsm.ErrNotFound}
	}
	// A release's app never changes: lock it, then read the state again
	// under the lock (a write of the same app may have landed meanwhile).
	app := rel.GetSpec().GetApp()
	defer d.appLocks.lock(app)()
	st := d.raft.State()
	if rel = st.Release(releaseID); rel == nil {
		return nil, &raftfsm.RejectedError{Type: raftfsm.CreateAssignments, Reason: fmt.Sprintf("no release %q", releaseID), Err: raftfsm.ErrNotFound}
	}
	now := time.Now().UnixNano()
	var as, live []*rollwavev1.Assignment
	for _, h := range hosts {
		var gen uint64 = 1
		if cur := st.Assignment(h, app); cur != nil {
			// Idempotent: a host this release already assigned in this
			// phase keeps its generation (its order is sent again).
			if cur.GetReleaseId() == releaseID && cur.GetPhase() == phase && !raftfsm.AssignmentEnded(cur.GetState()) {
				live = append(live, cur)
				continue
			}
			gen = cur.GetGeneration() + 1
		}
		as = append(as, &rollwavev1.Assignment{
			Host: h, App: app, Generation: gen, ReleaseId: releaseID, Phase: phase,
			State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED, Version: rel.GetSpec().GetVersion(),
			CreatedUnixNano: now, UpdatedUnixNano: now,
		})
	}
	if len(as) > 0 {
		cmd := &rollwavev1.CreateAssignmentsCommand{TimeUnixNano: now, Assignments: as, Events: []*rollwavev1.Event{AssignedEvent(rel, phase, as)}}
		if err := d.apply(raftfsm.CreateAssignments, cmd); err != nil {
			return nil, err
		}
	}
	as = append(as, live...)
	for _, a := range as {
		d.agents.Send(a.GetHost(), assignmentOrder(a, rel))
	}
	return as, nil
}

// AssignedEvent is the audit event of a phase's assignments, written in
// the same entry as the assignments: a leader lost right after assigning
// leaves neither or both.
func AssignedEvent(rel *rollwavev1.Release, phase int32, as []*rollwavev1.Assignment) *rollwavev1.Event {
	evidence := map[string]string{}
	names := make([]string, 0, len(as))
	for _, a := range as {
		evidence["host."+a.GetHost()] = fmt.Sprintf("generation %d", a.GetGeneration())
		names = append(names, a.GetHost())
	}
	evidence["hosts"] = strings.Join(names, ",")
	return &rollwavev1.Event{
		Kind: "hosts.assigned", ReleaseId: rel.GetId(), Phase: phase, Actor: "rollout", // rollout.Actor: the orchestrator decided
		Message:  fmt.Sprintf("phase %d: %d host(s) assigned version %s", phase, len(as), rel.GetSpec().GetVersion()),
		Evidence: evidence,
	}
}

// assignmentOrder is the order for a, with the release's spec and, when
// an admin overrode the freeze windows for the release, the override (the
// agent then starts the swap inside a window it knows of).
func assignmentOrder(a *rollwavev1.Assignment, rel *rollwavev1.Release) *rollwavev1.CoordinatorMessage {
	return &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Assignment{
		Assignment: &rollwavev1.AssignmentOrder{Assignment: a, Spec: withArtifactURLExpanded(rel.GetSpec()), FreezeOverride: rel.GetFreezeOverride()},
	}}
}

// withArtifactURLExpanded returns rs with {{version}} and {{app}} in its
// artifact URL replaced (spec validation allows them there), so the agent
// fetches, and checks against its policy, the URL it will really use. The
// stored release keeps the spec as written; rs is not modified.
func withArtifactURLExpanded(rs *rollwavev1.ReleaseSpec) *rollwavev1.ReleaseSpec {
	u := rs.GetArtifact().GetUrl()
	x := spec.Expand(u, spec.TemplateVars{Version: rs.GetVersion(), App: rs.GetApp()})
	if x == u {
		return rs
	}
	out := proto.Clone(rs).(*rollwavev1.ReleaseSpec)
	out.Artifact.Url = x
	return out
}

// OrderRevert records that the host's assignment must revert and tells the
// agent.
func (d *Dispatcher) OrderRevert(host, app string, gen uint64, reason string) error {
	res, err := d.raft.Apply(raftfsm.UpdateAssignments, &rollwavev1.UpdateAssignmentsCommand{
		TimeUnixNano: time.Now().UnixNano(),
		Updates: []*rollwavev1.AssignmentUpdate{{Host: host, App: app, Generation: gen,
			State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING, Reason: reason}},
	})
	if err != nil {
		return err
	}
	if r, ok := res.(*raftfsm.UpdateResult); ok && r.Applied == 0 {
		cur := d.raft.State().Assignment(host, app)
		return &raftfsm.RejectedError{Type: raftfsm.UpdateAssignments, Err: raftfsm.ErrIllegalTransition,
			Reason: fmt.Sprintf("cannot revert %s/%s generation %d from state %s", host, app, gen, cur.GetState())}
	}
	d.agents.Send(host, revertOrder(app, gen, reason))
	return nil
}

func revertOrder(app string, gen uint64, reason string) *rollwavev1.CoordinatorMessage {
	return &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Revert{
		Revert: &rollwavev1.RevertOrder{App: app, Generation: gen, Reason: reason},
	}}
}

// OrderFinalize tells the agent to finalize (drop the old slot per
// keep_old). The agent reports FINALIZED as progress.
func (d *Dispatcher) OrderFinalize(host, app string, gen uint64) bool {
	return d.agents.Send(host, &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Finalize{
		Finalize: &rollwavev1.FinalizeOrder{App: app, Generation: gen},
	}})
}

// NotifyVerified tells the agent its phase is verified: it must no longer
// revert on lost contact.
func (d *Dispatcher) NotifyVerified(host, app string, gen uint64) bool {
	return d.agents.Send(host, &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Verified{
		Verified: &rollwavev1.PhaseVerified{App: app, Generation: gen},
	}})
}

// OrderRehearse asks the host to rehearse the rollback of generation gen
// (rollback.rehearse). It only sends: nothing is decided until the
// orchestrator records the results with its phase decision, and the
// orchestrator asks again until it has them. False when the host is not
// connected.
func (d *Dispatcher) OrderRehearse(host, app string, gen uint64, maxRollback time.Duration) bool {
	return d.agents.Send(host, &rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Rehearse{
		Rehearse: &rollwavev1.RehearseOrder{App: app, Generation: gen, MaxRollbackTimeMs: maxRollback.Milliseconds()},
	}})
}

// ResendOrders sends a freshly connected host, through send (its new
// session), what raft says it should be doing: the order of every
// unfinished assignment, a revert for those being reverted, and the
// verified flag for phases already verified.
func (d *Dispatcher) ResendOrders(host string, send func(*rollwavev1.CoordinatorMessage) bool) {
	st := d.raft.State()
	for _, a := range st.HostAssignments(host) {
		rel := st.Release(a.GetReleaseId())
		if rel == nil {
			continue
		}
		switch a.GetState() {
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY:
			send(assignmentOrder(a, rel))
			if ph := phaseOf(rel, a.GetPhase()); ph != nil && ph.GetState() == rollwavev1.PhaseState_PHASE_STATE_VERIFIED {
				send(&rollwavev1.CoordinatorMessage{Msg: &rollwavev1.CoordinatorMessage_Verified{
					Verified: &rollwavev1.PhaseVerified{App: a.GetApp(), Generation: a.GetGeneration()},
				}})
			}
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING:
			send(revertOrder(a.GetApp(), a.GetGeneration(), a.GetReason()))
		}
	}
}

func phaseOf(r *rollwavev1.Release, idx int32) *rollwavev1.Phase {
	if idx < 0 || int(idx) >= len(r.GetPhases()) {
		return nil
	}
	return r.GetPhases()[idx]
}

// happyPath is the order an assignment moves through when all goes well.
var happyPath = []rollwavev1.AssignmentState{
	rollwavev1.AssignmentState_ASSIGNMENT_STATE_ASSIGNED,
	rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING,
	rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
	rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
	rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY,
	rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED,
}

func pathIndex(s rollwavev1.AssignmentState) int {
	for i, p := range happyPath {
		if p == s {
			return i
		}
	}
	return -1
}

// RecordProgress queues an agent's report for raft. Reports can arrive
// out of step (a session broke, a leader changed, the agent restarted and
// says where it is in its hello): when the agent is further along the
// happy path than raft knows, the steps in between are written too, in
// order, so the state machine is never skipped.
func (d *Dispatcher) RecordProgress(host string, p *rollwavev1.AssignmentProgress) {
	for _, u := range d.ProgressUpdates(host, p) {
		d.writer.UpdateAssignment(u)
	}
}

// ProgressUpdates are the assignment updates RecordProgress writes (a
// hello's reports go through HostWriter.Commit instead). A
// traffic move (switched, reverted) carries its audit event in its update,
// so the FSM records both in one entry, and only if the step applies: an
// agent resending a report cannot write a second event.
func (d *Dispatcher) ProgressUpdates(host string, p *rollwavev1.AssignmentProgress) []*rollwavev1.AssignmentUpdate {
	app, gen, to, reason := p.GetApp(), p.GetGeneration(), p.GetState(), p.GetReason()
	var out []*rollwavev1.AssignmentUpdate
	cur := d.raft.State().Assignment(host, app)
	if to == rollwavev1.AssignmentState_ASSIGNMENT_STATE_HELD_CONTROL_PLANE_DOWN {
		// Not a step of the assignment: the agent tells what it did while
		// no coordinator was up. It goes to the audit log (release status
		// shows it); the assignment keeps its state.
		d.recordHeld(host, app, gen, cur, reason)
		return nil
	}
	if cur != nil && cur.GetGeneration() == gen && cur.GetState() == to {
		// Raft already has it (a resent order answered again, a hello
		// repeating its last report): the FSM would skip it as a
		// same-state step, so it is not written at all.
		return nil
	}
	if cur != nil && cur.GetGeneration() == gen {
		from, target := pathIndex(cur.GetState()), pathIndex(to)
		if from >= 0 && target > from+1 {
			for _, step := range happyPath[from+1 : target] {
				late := &rollwavev1.AssignmentProgress{App: app, Generation: gen, State: step, Evidence: p.GetEvidence()}
				out = append(out, &rollwavev1.AssignmentUpdate{Host: host, App: app, Generation: gen, State: step, Reason: "reported late by the agent",
					Event: moveEvent(host, late, cur)})
			}
		}
	}
	return append(out, &rollwavev1.AssignmentUpdate{Host: host, App: app, Generation: gen, State: to, Reason: reason,
		Event: moveEvent(host, p, cur)})
}

// The agent's evidence of a traffic move (internal/deploy/slot's
// SwitchEvidence keys; the agent side is not imported here). A move event
// keeps only these, each value at most maxMoveEvidence bytes: what an
// agent sends beyond that does not go into raft.
const (
	evFromSlot    = "from_slot"
	evToSlot      = "to_slot"
	evFromVersion = "from_version"
	evToVersion   = "to_version"
	// A switch into weighted steps or a dark phase: the new slot's share
	// of new traffic, "true" for a dark phase, and the mirrored share.
	evWeight = "weight"
	evDark   = "dark"
	evShadow = "shadow"
)

var moveEventKeys = []string{evFromSlot, evToSlot, evFromVersion, evToVersion, evWeight, evDark, evShadow}

const maxMoveEvidence = 128

// moveEvent is the audit event of a progress report that moves traffic:
// host.switched for SWITCHED, host.reverted for REVERTED and
// REVERTED_ISOLATED; nil for every other state. cur is the assignment as
// raft has it (nil if none): it gives the version switched to when the
// agent's report does not say.
func moveEvent(host string, p *rollwavev1.AssignmentProgress, cur *rollwavev1.Assignment) *rollwavev1.Event {
	var kind string
	switch p.GetState() {
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED:
		kind = "host.switched"
	case rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED:
		kind = "host.reverted"
	default:
		return nil
	}
	ev := map[string]string{"app": p.GetApp(), "generation": fmt.Sprint(p.GetGeneration())}
	for _, k := range moveEventKeys {
		if v := p.GetEvidence()[k]; v != "" && len(v) <= maxMoveEvidence {
			ev[k] = v
		}
	}
	if cur != nil && cur.GetGeneration() == p.GetGeneration() && cur.GetVersion() != "" {
		// The version of this generation is raft's to say.
		if kind == "host.switched" {
			ev[evToVersion] = cur.GetVersion()
		} else {
			ev[evFromVersion] = cur.GetVersion()
		}
	}
	move := fmt.Sprintf("from %s (%s) to %s (%s)", orUnknown(ev[evFromSlot]), orUnknown(ev[evFromVersion]),
		orUnknown(ev[evToSlot]), orUnknown(ev[evToVersion]))
	msg := fmt.Sprintf("host %s switched %s generation %d %s", host, p.GetApp(), p.GetGeneration(), move)
	if ev[evDark] == "true" {
		msg = fmt.Sprintf("host %s started %s generation %d dark (no user traffic yet) %s", host, p.GetApp(), p.GetGeneration(), move)
		if ev[evShadow] != "" {
			msg += ", mirroring " + ev[evShadow] + " of requests to it"
		}
	}
	if kind == "host.reverted" {
		ev["reason"] = p.GetReason()
		if p.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
			ev["isolated"] = "true"
		}
		msg = fmt.Sprintf("host %s reverted %s generation %d %s: %s", host, p.GetApp(), p.GetGeneration(), move, p.GetReason())
	}
	return &rollwavev1.Event{Kind: kind, Actor: "agent:" + host, Host: host, Message: msg, Evidence: ev}
}

// SlotsEvidence is a move's evidence read from a hello's slot facts: the
// active slot is where traffic went, the other (if it holds a version)
// where it came from. A hello reports moves made while no leader
// listened.
func SlotsEvidence(facts []*rollwavev1.SlotFacts, app string) map[string]string {
	for _, f := range facts {
		if f.GetApp() != app {
			continue
		}
		version := map[rollwavev1.Slot]string{rollwavev1.Slot_SLOT_BLUE: f.GetBlueVersion(), rollwavev1.Slot_SLOT_GREEN: f.GetGreenVersion()}
		other := map[rollwavev1.Slot]rollwavev1.Slot{rollwavev1.Slot_SLOT_BLUE: rollwavev1.Slot_SLOT_GREEN, rollwavev1.Slot_SLOT_GREEN: rollwavev1.Slot_SLOT_BLUE}
		to := f.GetActive()
		from, ok := other[to]
		if !ok {
			return nil
		}
		ev := map[string]string{evToSlot: slotName(to), evToVersion: version[to]}
		if version[from] != "" {
			// The first deploy of the app came from no slot at all.
			ev[evFromSlot], ev[evFromVersion] = slotName(from), version[from]
		}
		return ev
	}
	return nil
}

// slotName is a slot as the agent names it ("blue", "green").
func slotName(s rollwavev1.Slot) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SLOT_"))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// recordHeld writes a host.held_control_plane_down event for an agent that
// kept its new version through a control-plane outage. It runs beside the
// session (raft may take a moment) and is bounded by the apply timeout.
func (d *Dispatcher) recordHeld(host, app string, gen uint64, cur *rollwavev1.Assignment, reason string) {
	ev := &rollwavev1.Event{
		TimeUnixNano: time.Now().UnixNano(), Kind: "host.held_control_plane_down", Actor: "agent:" + host, Host: host,
		Message:  fmt.Sprintf("host %s held %s generation %d through a control-plane outage: %s", host, app, gen, reason),
		Evidence: map[string]string{"app": app, "generation": fmt.Sprint(gen), "report": reason},
	}
	if d, ok := heldFor(reason); ok {
		ev.Evidence["held_for"] = d.String()
	}
	if cur != nil && cur.GetGeneration() == gen {
		ev.ReleaseId, ev.Phase = cur.GetReleaseId(), cur.GetPhase()
	}
	go func() {
		if err := d.apply(raftfsm.AppendEvents, &rollwavev1.AppendEventsCommand{TimeUnixNano: ev.GetTimeUnixNano(), Events: []*rollwavev1.Event{ev}}); err != nil {
			d.log.Warn("record a control-plane hold", "host", host, "app", app, "generation", gen, "error", err)
		}
	}()
}

// heldReport matches how long the agent held, from its report ("held
// version 2.0.0 for 35.2s while the control plane was down …", written by
// internal/agent's reportHold).
var heldReport = regexp.MustCompile(`^held version \S+ for (\S+) while`)

// heldFor reads how long an agent held from its report, for the event's
// held_for evidence (`rollwave hosts` and `release status` show it).
func heldFor(report string) (time.Duration, bool) {
	m := heldReport.FindStringSubmatch(report)
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	return d, err == nil && d >= 0
}
