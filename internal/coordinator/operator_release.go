package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/deploy/plan"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/spec/specpb"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// maxSpecSize bounds a submitted spec source.
const maxSpecSize = 1 << 20

// parseSpec turns a submitted source into a validated spec. Errors carry
// file:line:column, the field and the reason, one per line.
func parseSpec(name string, src []byte) (*rollwavev1.ReleaseSpec, error) {
	if name == "" {
		name = "spec.hcl"
	}
	if len(src) == 0 {
		return nil, errorf(raftfsm.ErrInvalid, "%s: the release spec is empty", name)
	}
	if len(src) > maxSpecSize {
		return nil, errorf(raftfsm.ErrInvalid, "%s: the release spec is %d bytes, over the %d byte limit", name, len(src), maxSpecSize)
	}
	r, err := spec.ParseRelease(name, src)
	if err != nil {
		return nil, withKind(raftfsm.ErrInvalid, err)
	}
	return specpb.ToProto(r), nil
}

// fleetForPlanning lists the hosts a plan may use: known to raft and alive
// in gossip (or connected right now), with the cells' descriptions.
func (s *Server) fleetForPlanning() plan.Fleet {
	live := s.livenessByName()
	var f plan.Fleet
	for _, h := range s.fsm.State().Hosts() {
		if live[h.GetId()] != "alive" && !s.agents.connected(h.GetId()) {
			continue
		}
		f.Hosts = append(f.Hosts, plan.HostInfo{ID: h.GetId(), Cell: h.GetCell(), Labels: h.GetLabels(), Region: h.GetRegion()})
	}
	f.Cells = s.fsm.State().Cells()
	return f
}

func (o *operatorService) PlanRelease(ctx context.Context, req *rollwavev1.PlanReleaseRequest) (*rollwavev1.PlanReleaseResponse, error) {
	sp, err := parseSpec(req.GetSourceName(), req.GetSource())
	if err != nil {
		return nil, err
	}
	p, err := plan.Compute(sp, o.s.fleetForPlanning())
	if err != nil {
		return nil, errorf(raftfsm.ErrConflict, "plan %s: %v", sp.GetName(), err)
	}
	return &rollwavev1.PlanReleaseResponse{Spec: sp, Phases: p.Phases, TargetedHosts: int32(p.Targeted)}, nil
}

func (o *operatorService) SubmitRelease(ctx context.Context, req *rollwavev1.SubmitReleaseRequest) (*rollwavev1.SubmitReleaseResponse, error) {
	// Parse before forwarding: a bad spec is refused by whichever server
	// receives it, and never costs the leader anything.
	if _, err := parseSpec(req.GetSourceName(), req.GetSource()); err != nil {
		return nil, err
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.SubmitRelease, o.submitLocal)
}

func (o *operatorService) submitLocal(ctx context.Context, req *rollwavev1.SubmitReleaseRequest) (*rollwavev1.SubmitReleaseResponse, error) {
	sp, err := parseSpec(req.GetSourceName(), req.GetSource())
	if err != nil {
		return nil, err
	}
	if err := o.s.checkGateURLs(sp); err != nil {
		return nil, err
	}
	id := sp.GetName()
	if prev := o.s.fsm.State().Release(id); prev != nil {
		// A `release start` retried after its first attempt was cut off
		// (a leader change between the submit entry and the start entry)
		// finds its own release pending: start it rather than leave it
		// pending behind an "exists already". Anything else with this name
		// is another release.
		if req.GetStart() && prev.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_PENDING &&
			bytes.Equal(prev.GetSource(), req.GetSource()) && prev.GetSourceName() == req.GetSourceName() {
			if err := o.s.setReleaseState(id, rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, "started on submit (retried)", actorOf(ctx, req.GetActor())); err != nil {
				return nil, err
			}
			return &rollwavev1.SubmitReleaseResponse{Release: o.s.fsm.State().Release(id)}, nil
		}
		return nil, errorf(raftfsm.ErrExists, "a release named %q exists already; give the new one another name", id)
	}
	if active := o.s.fsm.State().ActiveRelease(sp.GetApp()); active != nil {
		return nil, errorf(raftfsm.ErrConflict, "app %q already has release %q (%s); abort or finish it first",
			sp.GetApp(), active.GetId(), stateName(active.GetState()))
	}
	// The plan is computed now for the record; a release that starts later
	// is planned again against the fleet of that moment.
	var phases []*rollwavev1.Phase
	p, perr := plan.Compute(sp, o.s.fleetForPlanning())
	switch {
	case perr == nil:
		phases = p.Phases
	case req.GetStart():
		return nil, errorf(raftfsm.ErrConflict, "cannot start %s: %v", id, perr)
	case !errors.Is(perr, plan.ErrNoHosts):
		return nil, errorf(raftfsm.ErrInvalid, "plan %s: %v", id, perr)
	}
	now := time.Now().UnixNano()
	actor := actorOf(ctx, req.GetActor())
	rel := &rollwavev1.Release{
		Id:              id,
		Spec:            sp,
		State:           rollwavev1.ReleaseState_RELEASE_STATE_PENDING,
		Phases:          phases,
		CurrentPhase:    0,
		CreatedUnixNano: now,
		UpdatedUnixNano: now,
		CreatedBy:       actor,
		SourceName:      req.GetSourceName(),
		Source:          req.GetSource(),
	}
	if err := o.s.applyErr(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: now, Release: rel, Actor: actor}); err != nil {
		return nil, err
	}
	if req.GetStart() {
		if err := o.s.setReleaseState(id, rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, "started on submit", actor); err != nil {
			return nil, err
		}
	}
	return &rollwavev1.SubmitReleaseResponse{Release: o.s.fsm.State().Release(id)}, nil
}

func stateName(s rollwavev1.ReleaseState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RELEASE_STATE_"))
}

func (s *Server) setReleaseState(id string, st rollwavev1.ReleaseState, reason, actor string) error {
	return s.applyErr(raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: time.Now().UnixNano(), ReleaseId: id, State: st, Reason: reason, Actor: actor, CurrentPhase: -1,
	})
}

func (o *operatorService) GetRelease(ctx context.Context, req *rollwavev1.GetReleaseRequest) (*rollwavev1.GetReleaseResponse, error) {
	r := o.s.fsm.State().Release(req.GetId())
	if r == nil {
		return nil, errorf(raftfsm.ErrNotFound, "no release with id %q; see 'rollwave release list'", req.GetId())
	}
	resp := &rollwavev1.GetReleaseResponse{Release: r, Assignments: o.s.fsm.State().ReleaseAssignments(r.GetId())}
	resp.Traffic = releaseTraffic(o.s.fsm.State(), r.GetSpec().GetApp(), resp.GetAssignments())
	if d := drift.Desired(o.s.fsm.State(), r.GetSpec().GetApp()); d.GetId() == r.GetId() {
		resp.Drifted = drift.Hosts(o.s.fsm.State(), r.GetSpec().GetApp())
	}
	return resp, nil
}

// ConvergeRelease rolls the app's drifted hosts to its last succeeded
// release through a convergence release (see internal/deploy/drift); the
// leader builds, submits and starts it.
func (o *operatorService) ConvergeRelease(ctx context.Context, req *rollwavev1.ConvergeReleaseRequest) (*rollwavev1.ConvergeReleaseResponse, error) {
	if req.GetApp() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "converge needs an app name (rollwave release converge APP)")
	}
	return forward(o.s, ctx, req, rollwavev1.OperatorServiceClient.ConvergeRelease, func(ctx context.Context, req *rollwavev1.ConvergeReleaseRequest) (*rollwavev1.ConvergeReleaseResponse, error) {
		why := req.GetReason()
		if why == "" {
			why = "converge requested by operator"
		}
		r, skipped, err := o.s.rollout.Converge(ctx, req.GetApp(), actorOf(ctx, req.GetActor()), why)
		if err != nil {
			return nil, err
		}
		return &rollwavev1.ConvergeReleaseResponse{Release: r, Skipped: skipped}, nil
	})
}

func (o *operatorService) ListReleases(ctx context.Context, req *rollwavev1.ListReleasesRequest) (*rollwavev1.ListReleasesResponse, error) {
	rels := o.s.fsm.State().Releases(req.GetApp(), req.GetStates()...)
	// Listings carry no source text: it can be large, and get shows it.
	for _, r := range rels {
		r.Source = nil
	}
	return &rollwavev1.ListReleasesResponse{Releases: rels}, nil
}

// releaseAction is one operator control on a release: which states it may
// start from and what it does on the leader.
type releaseAction struct {
	name string
	do   func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error
}

func (o *operatorService) runAction(ctx context.Context, req *rollwavev1.ReleaseActionRequest, a releaseAction,
	remote func(rollwavev1.OperatorServiceClient, context.Context, *rollwavev1.ReleaseActionRequest, ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error),
) (*rollwavev1.ReleaseActionResponse, error) {
	if req.GetId() == "" {
		return nil, errorf(raftfsm.ErrInvalid, "%s needs a release id", a.name)
	}
	return forward(o.s, ctx, req, remote, func(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
		r := o.s.fsm.State().Release(req.GetId())
		if r == nil {
			return nil, errorf(raftfsm.ErrNotFound, "no release with id %q", req.GetId())
		}
		// With ACLs the token's name is the actor, whatever the client sent.
		if actor := actorOf(ctx, req.GetActor()); actor != req.GetActor() {
			req = proto.CloneOf(req)
			req.Actor = actor
		}
		if err := a.do(o.s, r, req); err != nil {
			return nil, err
		}
		return &rollwavev1.ReleaseActionResponse{Release: o.s.fsm.State().Release(req.GetId())}, nil
	})
}

func reasonOr(req *rollwavev1.ReleaseActionRequest, def string) string {
	if req.GetReason() != "" {
		return req.GetReason()
	}
	return def
}

func transition(to rollwavev1.ReleaseState, def string) func(*Server, *rollwavev1.Release, *rollwavev1.ReleaseActionRequest) error {
	return func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		return s.setReleaseState(r.GetId(), to, reasonOr(req, def), req.GetActor())
	}
}

// already reports whether the release is in one of the states an action
// leads to. The CLI retries an action after a leader change; when the
// first attempt committed and only its answer was lost, the retry finds
// the release where it was sent and must succeed without writing again,
// not fail with "cannot go from paused to paused".
func already(r *rollwavev1.Release, states ...rollwavev1.ReleaseState) bool {
	return slices.Contains(states, r.GetState())
}

func (o *operatorService) PauseRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	pause := transition(rollwavev1.ReleaseState_RELEASE_STATE_PAUSED, "paused by operator")
	return o.runAction(ctx, req, releaseAction{"pause", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if already(r, rollwavev1.ReleaseState_RELEASE_STATE_PAUSED) {
			return nil
		}
		return pause(s, r, req)
	}}, rollwavev1.OperatorServiceClient.PauseRelease)
}

func (o *operatorService) ResumeRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return o.runAction(ctx, req, releaseAction{"resume", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		switch r.GetState() {
		case rollwavev1.ReleaseState_RELEASE_STATE_PENDING:
			return s.startPending(r, req)
		case rollwavev1.ReleaseState_RELEASE_STATE_RUNNING:
			return nil // already running: a retried resume or start
		}
		return s.setReleaseState(r.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, reasonOr(req, "resumed by operator"), req.GetActor())
	}}, rollwavev1.OperatorServiceClient.ResumeRelease)
}

// maxEvidenceHosts caps the host names listed in one evidence value; the
// counts are always complete.
const maxEvidenceHosts = 50

// startPending starts a pending release against the fleet as it is now:
// the plan made at submit was a preview, and hosts may have joined or gone
// since. It refuses, changing nothing, if no host matches the target now.
// The new plan is one entry (SetReleasePlan carries no events); the start
// is the next, and carries the difference from the preview as its
// evidence, so a start is never in the log without it.
func (s *Server) startPending(r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
	if r.GetConvergeOf() != "" {
		// A convergence release's hosts are the drifted hosts it was
		// made for, not its target: it starts as it was planned.
		return s.setReleaseState(r.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, reasonOr(req, "started by operator"), req.GetActor())
	}
	p, err := plan.Compute(r.GetSpec(), s.fleetForPlanning())
	switch {
	case errors.Is(err, plan.ErrNoHosts):
		return errorf(raftfsm.ErrConflict, "cannot start release %q: no live host matches its target now (%v); nothing was changed. "+
			"Check 'rollwave hosts' and the spec's target, then resume again", r.GetId(), err)
	case err != nil:
		return errorf(raftfsm.ErrConflict, "cannot start release %q: plan: %v; nothing was changed", r.GetId(), err)
	}
	added, removed := planDiff(r.GetPhases(), p.Phases)
	if err := s.applyErr(raftfsm.SetReleasePlan, &rollwavev1.SubmitReleaseCommand{
		TimeUnixNano: time.Now().UnixNano(), Actor: req.GetActor(),
		Release: &rollwavev1.Release{Id: r.GetId(), Phases: p.Phases},
	}); err != nil {
		return err
	}
	msg := fmt.Sprintf("release %q planned again at start: %d host(s) targeted, %d added and %d removed since the preview",
		r.GetId(), p.Targeted, len(added), len(removed))
	evidence := map[string]string{
		"preview_hosts":  strconv.Itoa(hostCount(r.GetPhases())),
		"planned_hosts":  strconv.Itoa(p.Targeted),
		"hosts_added":    strconv.Itoa(len(added)),
		"hosts_removed":  strconv.Itoa(len(removed)),
		"planned_phases": strconv.Itoa(len(p.Phases)),
	}
	if len(added) > 0 {
		evidence["added"] = hostList(added)
	}
	if len(removed) > 0 {
		evidence["removed"] = hostList(removed)
	}
	now := time.Now().UnixNano()
	return s.applyErr(raftfsm.SetReleaseState, &rollwavev1.SetReleaseStateCommand{
		TimeUnixNano: now, ReleaseId: r.GetId(), State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING,
		Reason: reasonOr(req, "started by operator"), Actor: req.GetActor(), CurrentPhase: -1,
		Events: []*rollwavev1.Event{{
			TimeUnixNano: now, ReleaseId: r.GetId(), Kind: "release.replanned", Actor: req.GetActor(),
			Message: msg, Evidence: evidence,
		}},
	})
}

// planDiff returns the hosts in next but not in preview, and the reverse,
// each sorted.
func planDiff(preview, next []*rollwavev1.Phase) (added, removed []string) {
	before, after := phaseHosts(preview), phaseHosts(next)
	for h := range after {
		if !before[h] {
			added = append(added, h)
		}
	}
	for h := range before {
		if !after[h] {
			removed = append(removed, h)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

func phaseHosts(phases []*rollwavev1.Phase) map[string]bool {
	m := make(map[string]bool)
	for _, p := range phases {
		for _, h := range p.GetHosts() {
			m[h] = true
		}
	}
	return m
}

func hostCount(phases []*rollwavev1.Phase) int { return len(phaseHosts(phases)) }

// hostList joins at most maxEvidenceHosts names, saying how many it left out.
func hostList(hosts []string) string {
	if len(hosts) <= maxEvidenceHosts {
		return strings.Join(hosts, ",")
	}
	return fmt.Sprintf("%s,... (%d more)", strings.Join(hosts[:maxEvidenceHosts], ","), len(hosts)-maxEvidenceHosts)
}

func (o *operatorService) AbortRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return o.runAction(ctx, req, releaseAction{"abort", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if already(r, rollwavev1.ReleaseState_RELEASE_STATE_ABORTED) {
			return nil
		}
		if r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK {
			return s.setReleaseState(r.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_ABORTED, reasonOr(req, "aborted by operator"), req.GetActor())
		}
		// Stop a rollback where it is: only AbortRelease (type 20) may
		// (see raftfsm.AbortRelease).
		return s.applyErr(raftfsm.AbortRelease, &rollwavev1.SetReleaseStateCommand{
			TimeUnixNano: time.Now().UnixNano(), ReleaseId: r.GetId(), State: rollwavev1.ReleaseState_RELEASE_STATE_ABORTED,
			Reason: reasonOr(req, "rollback aborted by operator; hosts stay where they are"), Actor: req.GetActor(), CurrentPhase: -1,
		})
	}}, rollwavev1.OperatorServiceClient.AbortRelease)
}

func (o *operatorService) RollbackRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	rollback := transition(rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK, "rollback ordered by operator")
	return o.runAction(ctx, req, releaseAction{"rollback", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if already(r, rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK, rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK) {
			return nil
		}
		if err := s.refuseChainRollback(r); err != nil {
			return err
		}
		return rollback(s, r, req)
	}}, rollwavev1.OperatorServiceClient.RollbackRelease)
}

func (o *operatorService) ApproveRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return o.runAction(ctx, req, releaseAction{"approve", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL {
			return errorf(raftfsm.ErrConflict, "release %q is %s, not awaiting approval", r.GetId(), stateName(r.GetState()))
		}
		if err := s.applyErr(raftfsm.ApprovePhase, &rollwavev1.ApprovePhaseCommand{
			TimeUnixNano: time.Now().UnixNano(), ReleaseId: r.GetId(), Index: r.GetCurrentPhase(), Actor: req.GetActor(),
		}); err != nil {
			return err
		}
		return s.setReleaseState(r.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, reasonOr(req, fmt.Sprintf("phase %d approved", r.GetCurrentPhase())), req.GetActor())
	}}, rollwavev1.OperatorServiceClient.ApproveRelease)
}

func (o *operatorService) PromoteRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return o.runAction(ctx, req, releaseAction{"promote", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if !req.GetSkipBake() {
			return errorf(raftfsm.ErrInvalid, "promote only skips the current bake; pass -skip-bake to confirm this emergency path")
		}
		idx := r.GetCurrentPhase()
		if idx < 0 || int(idx) >= len(r.GetPhases()) || r.GetPhases()[idx].GetState() != rollwavev1.PhaseState_PHASE_STATE_BAKING {
			return errorf(raftfsm.ErrConflict, "release %q has no phase baking right now", r.GetId())
		}
		return s.applyErr(raftfsm.SetPhaseState, &rollwavev1.SetPhaseStateCommand{
			TimeUnixNano: time.Now().UnixNano(), ReleaseId: r.GetId(), Index: idx,
			State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED, BakeSkipped: true,
			Reason: reasonOr(req, "bake skipped by operator (emergency promote) by "+req.GetActor()),
		})
	}}, rollwavev1.OperatorServiceClient.PromoteRelease)
}

func (o *operatorService) ListEvents(ctx context.Context, req *rollwavev1.ListEventsRequest) (*rollwavev1.ListEventsResponse, error) {
	if req.GetReleaseId() != "" && o.s.fsm.State().Release(req.GetReleaseId()) == nil {
		return nil, errorf(raftfsm.ErrNotFound, "no release with id %q", req.GetReleaseId())
	}
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	return &rollwavev1.ListEventsResponse{Events: o.s.fsm.State().Events(req.GetReleaseId(), req.GetAfterSeq(), limit)}, nil
}
