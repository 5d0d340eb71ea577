package raftfsm

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// go test ./internal/raftfsm -run TestGolden -update rewrites testdata/.
// Only do that for a new format version: the committed files are what
// released servers wrote, and today's code must keep reading them.
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// goldenStep is one golden log entry: the command that wrote it (used only
// with -update) and what applying it must do to the state.
type goldenStep struct {
	cmd   cmd
	check func(t *testing.T, s *State)
}

// namedStep is a golden step whose file name is given: a second entry of a
// type (setting up the state a newer command needs) needs its own file.
type namedStep struct {
	file string
	goldenStep
}

// snapshotAfter names the step after which snapshot-v1.bin was taken: by
// then every kind of snapshot record exists.
const snapshotAfter = SetGlobalFreeze

// aclSnapshotAfter names the step after which snapshot-v1-acl.bin was
// taken: the last of the ACL steps.
const aclSnapshotAfter = "cmd-delete-acl-token.bin"

func goldenSteps() []goldenStep {
	const now = int64(1_767_225_600_000_000_000) // 2026-01-01T00:00:00Z
	return []goldenStep{
		{cmd{UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: now, Hosts: []*v1.Host{
			{Id: "h1", Cell: "eu-1", Region: "eu", Labels: map[string]string{"rack": "r1"}, Address: "10.0.0.1:7070", AgentVersion: "0.1.0",
				Apps: []*v1.SlotFacts{{App: "api", Active: v1.Slot_SLOT_BLUE, BlueVersion: "2.3.0", BlueState: "active", GreenState: "inactive"}}},
			{Id: "h2", Cell: "eu-1", Region: "eu", Address: "10.0.0.2:7070"},
		}}}, func(t *testing.T, s *State) {
			if h := s.Host("h1"); h.GetFirstSeenUnixNano() != now || h.GetApps()[0].GetBlueVersion() != "2.3.0" || h.GetLabels()["rack"] != "r1" {
				t.Errorf("h1 = %v", h)
			}
			if len(s.Hosts()) != 2 {
				t.Errorf("hosts = %v", s.Hosts())
			}
		}},
		{cmd{SetCell, &v1.SetCellCommand{TimeUnixNano: now + 1, Actor: "ops", Cell: &v1.Cell{Name: "canary", Risk: 0, Criticality: "low", Users: 10}}},
			func(t *testing.T, s *State) {
				if c := s.Cell("canary"); c.GetCriticality() != "low" || c.GetUsers() != 10 || c.GetUpdatedUnixNano() != now+1 {
					t.Errorf("cell = %v", c)
				}
			}},
		{cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: now + 2, Actor: "alice", Release: &v1.Release{
			Id: "api-2.4.0", SourceName: "api.hcl", Source: []byte(`release "api-2.4.0" {}`),
			Spec: &v1.ReleaseSpec{Name: "api-2.4.0", App: "api", Version: "2.4.0",
				Artifact: &v1.Artifact{Url: "https://artifacts.internal/api/2.4.0/api.tar.gz", Sha256: "9f2c"},
				Slots:    &v1.SlotsSpec{BluePort: 8081, GreenPort: 8082, KeepOld: "hot"},
				Phases:   &v1.PhasesSpec{Canary: 1, Growth: "geometric", Factor: 2, MaxSize: &v1.Quantity{Value: 25, Percent: true}},
				Approval: &v1.ApprovalSpec{AfterPhases: []int32{0}}},
			Phases: []*v1.Phase{
				{Index: 0, Hosts: []string{"h1"}, Cells: []string{"eu-1"}, BakeMs: 1_800_000, ApprovalRequired: true},
				{Index: 1, Hosts: []string{"h2"}, Cells: []string{"eu-1"}, BakeMs: 900_000},
			},
		}}}, func(t *testing.T, s *State) {
			r := s.Release("api-2.4.0")
			if r.GetState() != rsPending || r.GetCreatedBy() != "alice" || r.GetSpec().GetArtifact().GetSha256() != "9f2c" || len(r.GetPhases()) != 2 {
				t.Errorf("release = %v", r)
			}
			if s.App("api").GetActiveReleaseId() != "api-2.4.0" {
				t.Errorf("app = %v", s.App("api"))
			}
		}},
		{cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: now + 3, ReleaseId: "api-2.4.0", State: rsRunning, Reason: "started", Actor: "alice", CurrentPhase: 0}},
			func(t *testing.T, s *State) {
				if r := s.Release("api-2.4.0"); r.GetState() != rsRunning || r.GetReason() != "started" {
					t.Errorf("release = %v", r)
				}
			}},
		{cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 4, ReleaseId: "api-2.4.0", Index: 0, State: psDeploying, Reason: "canary"}},
			func(t *testing.T, s *State) {
				if p := s.Release("api-2.4.0").GetPhases()[0]; p.GetState() != psDeploying || p.GetStartedUnixNano() != now+4 {
					t.Errorf("phase = %v", p)
				}
			}},
		{cmd{ApprovePhase, &v1.ApprovePhaseCommand{TimeUnixNano: now + 5, ReleaseId: "api-2.4.0", Index: 0, Actor: "bob"}},
			func(t *testing.T, s *State) {
				if !s.Release("api-2.4.0").GetPhases()[0].GetApproved() {
					t.Error("phase 0 not approved")
				}
			}},
		{cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: now + 6, Assignments: []*v1.Assignment{
			{Host: "h1", App: "api", Generation: 1, ReleaseId: "api-2.4.0", Phase: 0, Version: "2.4.0", TargetSlot: v1.Slot_SLOT_GREEN},
		}}}, func(t *testing.T, s *State) {
			if a := s.Assignment("h1", "api"); a.GetState() != asAssigned || a.GetTargetSlot() != v1.Slot_SLOT_GREEN {
				t.Errorf("assignment = %v", a)
			}
		}},
		{cmd{UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: now + 7, Updates: []*v1.AssignmentUpdate{
			{Host: "h1", App: "api", Generation: 1, State: asStaging, Reason: "fetching artifact"},
		}}}, func(t *testing.T, s *State) {
			if a := s.Assignment("h1", "api"); a.GetState() != asStaging || a.GetReason() != "fetching artifact" {
				t.Errorf("assignment = %v", a)
			}
		}},
		{cmd{AppendEvents, &v1.AppendEventsCommand{TimeUnixNano: now + 8, Events: []*v1.Event{
			{ReleaseId: "api-2.4.0", Kind: "host.staging", Host: "h1", Evidence: map[string]string{"sha256": "9f2c"}},
		}}}, func(t *testing.T, s *State) {
			ev := s.Events("api-2.4.0", 0, 0)
			if last := ev[len(ev)-1]; last.GetKind() != "host.staging" || last.GetSeq() != uint64(len(ev)) {
				t.Errorf("events = %v", ev)
			}
		}},
		{cmd{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: now + 9, Window: &v1.FreezeWindow{
			Id: "xmas", FromUnixNano: now + 1000, ToUnixNano: now + 2000, Reason: "holidays", CreatedBy: "ops"}}},
			func(t *testing.T, s *State) {
				if fr := s.Freezes(); len(fr) != 1 || fr[0].GetReason() != "holidays" {
					t.Errorf("freezes = %v", fr)
				}
			}},
		{cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: now + 10, On: true, Reason: "incident 7", Actor: "ops"}},
			func(t *testing.T, s *State) {
				if on, why := s.GlobalFreeze(); !on || why != "incident 7" {
					t.Errorf("global freeze = %v %q", on, why)
				}
			}},
		{cmd{RemoveFreeze, &v1.RemoveFreezeCommand{TimeUnixNano: now + 11, Id: "xmas", Actor: "ops"}},
			func(t *testing.T, s *State) {
				if len(s.Freezes()) != 0 {
					t.Error("freeze not removed")
				}
			}},
		{cmd{DeleteCell, &v1.DeleteCellCommand{TimeUnixNano: now + 12, Name: "canary", Actor: "ops"}},
			func(t *testing.T, s *State) {
				if s.Cell("canary") != nil {
					t.Error("cell not deleted")
				}
			}},
		{cmd{DeleteHost, &v1.DeleteHostCommand{TimeUnixNano: now + 13, Id: "h2", Actor: "ops"}},
			func(t *testing.T, s *State) {
				if s.Host("h2") != nil || s.Host("h1") == nil {
					t.Errorf("hosts = %v", s.Hosts())
				}
			}},
	}
}

// laterGoldenSteps follow goldenSteps, for command types added since.
func laterGoldenSteps() []namedStep {
	const now = int64(1_767_225_600_000_000_000)
	return []namedStep{
		// Since type 15 (SetReleasePlan): a release submitted without a plan
		// is planned at start.
		{goldenStep: goldenStep{cmd: cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: now + 14, Actor: "alice", Release: &v1.Release{
			Id: "web-1.0.0", Spec: &v1.ReleaseSpec{Name: "web-1.0.0", App: "web", Version: "1.0.0"}}}},
			check: func(t *testing.T, s *State) {
				if r := s.Release("web-1.0.0"); r.GetState() != rsPending || len(r.GetPhases()) != 0 {
					t.Errorf("release = %v", r)
				}
			}}, file: "cmd-submit-release-unplanned.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetReleasePlan, &v1.SubmitReleaseCommand{TimeUnixNano: now + 15, Actor: "rollout", Release: &v1.Release{
			Id: "web-1.0.0", Phases: []*v1.Phase{{Index: 0, Hosts: []string{"h1"}, Cells: []string{"eu-1"}, BakeMs: 60_000}}}}},
			check: func(t *testing.T, s *State) {
				r := s.Release("web-1.0.0")
				if len(r.GetPhases()) != 1 || r.GetPhases()[0].GetHosts()[0] != "h1" || r.GetPhases()[0].GetState() != psPending {
					t.Errorf("release = %v", r)
				}
				if ev := s.Events("web-1.0.0", 0, 0); ev[len(ev)-1].GetKind() != "release.planned" {
					t.Errorf("events = %v", ev)
				}
			}}},
		// Since type 16 (AdvancePhase): phase 0 of api-2.4.0 bakes, is
		// verified, and the release moves on to phase 1.
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 16, ReleaseId: "api-2.4.0", Index: 0, State: psBaking,
			BakeDeadlineUnixNano: now + 1_800_000_000_016, Reason: "all hosts healthy"}},
			check: func(t *testing.T, s *State) {
				if p := s.Release("api-2.4.0").GetPhases()[0]; p.GetState() != psBaking || p.GetBakeDeadlineUnixNano() != now+1_800_000_000_016 {
					t.Errorf("phase = %v", p)
				}
			}}, file: "cmd-set-phase-state-baking.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 17, ReleaseId: "api-2.4.0", Index: 0, State: psVerified, Reason: "gates passed"}},
			check: func(t *testing.T, s *State) {
				if p := s.Release("api-2.4.0").GetPhases()[0]; p.GetState() != psVerified {
					t.Errorf("phase = %v", p)
				}
			}}, file: "cmd-set-phase-state-verified.bin"},
		{goldenStep: goldenStep{cmd: cmd{AdvancePhase, &v1.SetReleaseStateCommand{TimeUnixNano: now + 18, ReleaseId: "api-2.4.0", CurrentPhase: 1, Reason: "phase 0 verified", Actor: "rollout"}},
			check: func(t *testing.T, s *State) {
				if r := s.Release("api-2.4.0"); r.GetCurrentPhase() != 1 || r.GetState() != rsRunning {
					t.Errorf("release = %v", r)
				}
			}}},
		// Since types 17-19 (ACL tokens): bootstrap, a second admin and a
		// read token, then the bootstrap token is deleted.
		{goldenStep: goldenStep{cmd: cmd{ACLBootstrap, &v1.ACLBootstrapCommand{TimeUnixNano: now + 19, Token: &v1.ACLToken{
			AccessorId: "acc-bootstrap", SecretHash: strings.Repeat("1", 64), Name: "bootstrap", Role: RoleAdmin}}},
			check: func(t *testing.T, s *State) {
				if ok, at := s.ACLBootstrapped(); !ok || at != now+19 || s.ACLToken("acc-bootstrap").GetCreatedBy() != "bootstrap" {
					t.Errorf("bootstrapped %v at %d, tokens %v", ok, at, s.ACLTokens())
				}
			}}, file: "cmd-acl-bootstrap.bin"},
		{goldenStep: goldenStep{cmd: cmd{UpsertACLToken, &v1.UpsertACLTokenCommand{TimeUnixNano: now + 20, Actor: "bootstrap", Token: &v1.ACLToken{
			AccessorId: "acc-ops", SecretHash: strings.Repeat("2", 64), Name: "ops", Role: RoleAdmin}}},
			check: func(t *testing.T, s *State) {
				if tok := s.ACLToken("acc-ops"); tok.GetRole() != RoleAdmin || tok.GetCreatedBy() != "bootstrap" || tok.GetCreatedUnixNano() != now+20 {
					t.Errorf("token = %v", tok)
				}
			}}, file: "cmd-upsert-acl-token.bin"},
		{goldenStep: goldenStep{cmd: cmd{UpsertACLToken, &v1.UpsertACLTokenCommand{TimeUnixNano: now + 21, Actor: "ops", Token: &v1.ACLToken{
			AccessorId: "acc-ci", SecretHash: strings.Repeat("3", 64), Name: "ci", Role: RoleRead}}},
			check: func(t *testing.T, s *State) {
				if tok := s.ResolveACLToken(strings.Repeat("3", 64)); tok.GetName() != "ci" || tok.GetRole() != RoleRead {
					t.Errorf("token = %v", tok)
				}
			}}, file: "cmd-upsert-acl-token-read.bin"},
		{goldenStep: goldenStep{cmd: cmd{DeleteACLToken, &v1.DeleteACLTokenCommand{TimeUnixNano: now + 22, AccessorId: "acc-bootstrap", Actor: "ops"}},
			check: func(t *testing.T, s *State) {
				if s.ACLToken("acc-bootstrap") != nil || len(s.ACLTokens()) != 2 {
					t.Errorf("tokens = %v", s.ACLTokens())
				}
			}}, file: "cmd-delete-acl-token.bin"},
		// Since the transition commands carry events (SetPhaseStateCommand
		// field 8, SetReleaseStateCommand field 7): a decision and its
		// evidence in one entry, the evidence first.
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 23, ReleaseId: "api-2.4.0", Index: 1, State: psDeploying,
			Reason: "phase 1 starts", Events: []*v1.Event{{ReleaseId: "api-2.4.0", Phase: 1, Kind: "phase.started", Actor: "rollout",
				Message: "phase 1 starts: 1 host(s)", Evidence: map[string]string{"hosts": "h2", "bake_ms": "900000"}}}}},
			check: func(t *testing.T, s *State) {
				ev := s.Events("api-2.4.0", 0, 0)
				started, trans := ev[len(ev)-2], ev[len(ev)-1]
				if started.GetKind() != "phase.started" || started.GetEvidence()["hosts"] != "h2" || started.GetTimeUnixNano() != now+23 ||
					trans.GetKind() != "phase.deploying" || trans.GetSeq() != started.GetSeq()+1 {
					t.Errorf("events = %v, %v", started, trans)
				}
			}}, file: "cmd-set-phase-state-with-events.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 24, ReleaseId: "api-2.4.0", Index: 1, State: psFailed,
			Reason: "gate failed: cpu 97.5% > 90%", Events: []*v1.Event{
				{ReleaseId: "api-2.4.0", Phase: 1, Kind: "gate.failed", Actor: "rollout", Message: "max_cpu_percent",
					Evidence: map[string]string{"gate": "max_cpu_percent", "value": "97.5", "limit": "90", "worst_host": "h2"}},
				{ReleaseId: "api-2.4.0", Phase: 1, Kind: "gate.passed", Actor: "rollout", Message: "max_failed_hosts",
					Evidence: map[string]string{"gate": "max_failed_hosts", "value": "0", "limit": "0"}},
			}}},
			check: func(t *testing.T, s *State) {
				if p := s.Release("api-2.4.0").GetPhases()[1]; p.GetState() != psFailed {
					t.Errorf("phase 1 = %v", p)
				}
				ev := s.Events("api-2.4.0", 0, 0)
				if k := []string{ev[len(ev)-3].GetKind(), ev[len(ev)-2].GetKind(), ev[len(ev)-1].GetKind()}; strings.Join(k, " ") != "gate.failed gate.passed phase.failed" {
					t.Errorf("last events %v", k)
				}
			}}, file: "cmd-set-phase-state-failed-with-events.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: now + 25, ReleaseId: "api-2.4.0", State: rsRollBack,
			Reason: "phase 1 failed; rollback.on_failure = all", Actor: "rollout", CurrentPhase: -1, Events: []*v1.Event{
				{ReleaseId: "api-2.4.0", Phase: 1, Kind: "release.policy", Actor: "rollout", Message: "rollback.on_failure = all",
					Evidence: map[string]string{"policy": "all"}}}}},
			check: func(t *testing.T, s *State) {
				if r := s.Release("api-2.4.0"); r.GetState() != rsRollBack {
					t.Errorf("release = %v", r)
				}
				ev := s.Events("api-2.4.0", 0, 0)
				if ev[len(ev)-2].GetKind() != "release.policy" || ev[len(ev)-1].GetKind() != "release.rolling_back" {
					t.Errorf("last events %v, %v", ev[len(ev)-2], ev[len(ev)-1])
				}
			}}, file: "cmd-set-release-state-with-events.bin"},
		// Since AssignmentUpdate field 6 (event): a host's switch and its
		// audit event in one entry; the event takes the assignment's
		// release, phase and host.
		{goldenStep: goldenStep{cmd: cmd{UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: now + 25, Updates: []*v1.AssignmentUpdate{
			{Host: "h1", App: "api", Generation: 1, State: v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED, Event: &v1.Event{
				Kind: "host.switched", Actor: "agent:h1", Message: "h1 switched api generation 1 from blue (2.3.0) to green (2.4.0)",
				Evidence: map[string]string{"app": "api", "generation": "1", "from_slot": "blue", "to_slot": "green", "from_version": "2.3.0", "to_version": "2.4.0"}}},
		}}},
			check: func(t *testing.T, s *State) {
				if a := s.Assignment("h1", "api"); a.GetState() != v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED {
					t.Errorf("assignment = %v", a)
				}
				ev := s.Events("api-2.4.0", 0, 0)
				if last := ev[len(ev)-1]; last.GetKind() != "host.switched" || last.GetHost() != "h1" || last.GetReleaseId() != "api-2.4.0" ||
					last.GetEvidence()["to_version"] != "2.4.0" || last.GetTimeUnixNano() != now+25 {
					t.Errorf("last event = %v", last)
				}
			}}, file: "cmd-update-assignments-with-event.bin"},
		// Since type 20 (AbortRelease): a release rolling back is aborted;
		// its live assignments are abandoned where they are.
		{goldenStep: goldenStep{cmd: cmd{AbortRelease, &v1.SetReleaseStateCommand{TimeUnixNano: now + 26, ReleaseId: "api-2.4.0",
			State: v1.ReleaseState_RELEASE_STATE_ABORTED, Reason: "stop the rollback", Actor: "ops", CurrentPhase: -1}},
			check: func(t *testing.T, s *State) {
				if r := s.Release("api-2.4.0"); r.GetState() != v1.ReleaseState_RELEASE_STATE_ABORTED || r.GetReason() != "stop the rollback" {
					t.Errorf("release = %v", r)
				}
				if a := s.Assignment("h1", "api"); a.GetState() != v1.AssignmentState_ASSIGNMENT_STATE_ABANDONED {
					t.Errorf("assignment = %v", a)
				}
			}}},
		// Since type 21 (Prune): retention drops events older than the
		// cutoff; the only release of api is kept (keep 1, and h1 runs it).
		{goldenStep: goldenStep{cmd: cmd{Prune, &v1.PruneCommand{TimeUnixNano: now + 27, Actor: "gc",
			KeepReleasesPerApp: 1, EventsBeforeUnixNano: now + 10}},
			check: func(t *testing.T, s *State) {
				if s.Release("api-2.4.0") == nil {
					t.Error("release api-2.4.0 was pruned")
				}
				ev := s.Events("", 0, 0)
				for _, e := range ev {
					if e.GetTimeUnixNano() < now+10 {
						t.Errorf("event older than the cutoff kept: %v", e)
					}
				}
				if last := ev[len(ev)-1]; last.GetKind() != "state.pruned" || last.GetEvidence()["releases"] != "0" {
					t.Errorf("last event = %v", last)
				}
			}}},
		// Since type 22 (SetNotifyCursors, written with the ignore flag):
		// a notification target's first cursor.
		{goldenStep: goldenStep{cmd: cmd{SetNotifyCursors | IgnoreUnknownTypeFlag, &v1.SetNotifyCursorsCommand{TimeUnixNano: now + 28,
			Cursors: []*v1.NotifyCursor{{Target: "ops-hook", DeliveredSeq: 3}}}},
			check: func(t *testing.T, s *State) {
				c := s.NotifyCursor("ops-hook")
				if c.GetDeliveredSeq() != 3 || c.GetCreatedUnixNano() != now+28 || c.GetUpdatedUnixNano() != now+28 {
					t.Errorf("cursor = %v", c)
				}
			}}, file: "cmd-set-notify-cursors.bin"},
		// Since type 23 (AckRelease): the failure of api-2.4.0 (phase 1
		// failed a gate) is acknowledged.
		{goldenStep: goldenStep{cmd: cmd{AckRelease, &v1.AckReleaseCommand{TimeUnixNano: now + 29, ReleaseId: "api-2.4.0", Actor: "ops", Reason: "paged, looking"}},
			check: func(t *testing.T, s *State) {
				if r := s.Release("api-2.4.0"); r.GetAckedUnixNano() != now+29 || r.GetAckedBy() != "ops" || r.GetAckReason() != "paged, looking" {
					t.Errorf("release = %v", r)
				}
				ev := s.Events("api-2.4.0", 0, 0)
				if last := ev[len(ev)-1]; last.GetKind() != "release.acked" || last.GetActor() != "ops" || last.GetTimeUnixNano() != now+29 {
					t.Errorf("last event = %v", last)
				}
			}}},
		// Since FreezeWindow fields 7-11: a recurring, scoped window.
		{goldenStep: goldenStep{cmd: cmd{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: now + 30, Window: &v1.FreezeWindow{
			Id: "frz-weekend", Reason: "weekend", CreatedBy: "ops", Cron: "0 18 * * FRI", DurationMs: 62 * 3600 * 1000,
			Timezone: "Europe/Berlin", Apps: []string{"web"}, Cells: []string{"eu-1"}}}},
			check: func(t *testing.T, s *State) {
				var w *v1.FreezeWindow
				for _, x := range s.Freezes() {
					if x.GetId() == "frz-weekend" {
						w = x
					}
				}
				if w.GetCron() != "0 18 * * FRI" || w.GetDurationMs() != 62*3600*1000 || w.GetTimezone() != "Europe/Berlin" ||
					w.GetApps()[0] != "web" || w.GetCells()[0] != "eu-1" || w.GetCreatedUnixNano() != now+30 {
					t.Errorf("window = %v", w)
				}
				ev := s.Events("", 0, 0)
				if last := ev[len(ev)-1]; last.GetKind() != "freeze.added" || last.GetEvidence()["cron"] != "0 18 * * FRI" || last.GetEvidence()["cells"] != "eu-1" {
					t.Errorf("last event = %v", last)
				}
			}}, file: "cmd-add-freeze-recurring.bin"},
		// Since type 24 (OverrideFreeze): an admin overrides the freezes
		// for the pending release web-1.0.0.
		{goldenStep: goldenStep{cmd: cmd{OverrideFreeze, &v1.OverrideFreezeCommand{TimeUnixNano: now + 31, ReleaseId: "web-1.0.0", Actor: "root-admin", Reason: "hotfix INC-7"}},
			check: func(t *testing.T, s *State) {
				o := s.Release("web-1.0.0").GetFreezeOverride()
				if o.GetActor() != "root-admin" || o.GetReason() != "hotfix INC-7" || o.GetTimeUnixNano() != now+31 {
					t.Errorf("override = %v", o)
				}
				ev := s.Events("web-1.0.0", 0, 0)
				if last := ev[len(ev)-1]; last.GetKind() != "freeze.overridden" || last.GetActor() != "root-admin" || last.GetEvidence()["reason"] != "hotfix INC-7" {
					t.Errorf("last event = %v", last)
				}
			}}},
		// Since types 27-29 (chains): a two-step chain of app db, its
		// first step succeeds, the leader starts the second after
		// min_gap, then an operator rolls the chain back.
		{goldenStep: goldenStep{cmd: cmd{SubmitChain, &v1.SubmitChainCommand{TimeUnixNano: now + 40, Actor: "alice",
			Chain: &v1.Chain{Name: "db-fmt-v5", SourceName: "chain.hcl", Source: []byte(`chain "db-fmt-v5" {}`), Steps: []*v1.ChainStep{
				{Name: "db-read", Spec: &v1.ReleaseSpec{Name: "db-read", App: "db", Version: "5.0.0",
					Requires: []*v1.Requirement{{App: "api", Version: ">= 2.3"}}}},
				{Name: "db-write", After: "db-read", MinGapMs: 3_600_000, Spec: &v1.ReleaseSpec{Name: "db-write", App: "db", Version: "5.1.0"}},
			}},
			First: &v1.Release{Id: "db-read", Spec: &v1.ReleaseSpec{Name: "db-read", App: "db", Version: "5.0.0",
				Requires: []*v1.Requirement{{App: "api", Version: ">= 2.3"}}}}}},
			check: func(t *testing.T, s *State) {
				c := s.Chain("db-fmt-v5")
				if c.GetState() != v1.ChainState_CHAIN_STATE_ACTIVE || !c.GetSteps()[0].GetStarted() || c.GetSteps()[1].GetStarted() || c.GetCreatedBy() != "alice" {
					t.Errorf("chain = %v", c)
				}
				if r := s.Release("db-read"); r.GetState() != rsPending || r.GetChain() != "db-fmt-v5" || r.GetSpec().GetRequires()[0].GetVersion() != ">= 2.3" {
					t.Errorf("release = %v", r)
				}
			}}},
		{goldenStep: goldenStep{cmd: cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: now + 41, ReleaseId: "db-read", State: rsRunning, Reason: "started", Actor: "alice", CurrentPhase: -1}},
			check: func(t *testing.T, s *State) {}}, file: "cmd-chain-first-running.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: now + 42, ReleaseId: "db-read", State: v1.ReleaseState_RELEASE_STATE_SUCCEEDED, Reason: "all phases verified", Actor: "rollout", CurrentPhase: -1}},
			check: func(t *testing.T, s *State) {}}, file: "cmd-chain-first-succeeded.bin"},
		{goldenStep: goldenStep{cmd: cmd{StartChainStep, &v1.StartChainStepCommand{TimeUnixNano: now + 42 + 3_600_000_000_000, Chain: "db-fmt-v5", Step: 1, Actor: "rollout",
			Release: &v1.Release{Id: "db-write", Spec: &v1.ReleaseSpec{Name: "db-write", App: "db", Version: "5.1.0"}},
			Events:  []*v1.Event{{ReleaseId: "db-write", Kind: "chain.step_started", Evidence: map[string]string{"chain": "db-fmt-v5", "after": "db-read"}}}}},
			check: func(t *testing.T, s *State) {
				if c := s.Chain("db-fmt-v5"); !c.GetSteps()[1].GetStarted() {
					t.Errorf("chain = %v", c)
				}
				if r := s.Release("db-write"); r.GetState() != rsRunning || r.GetChainStep() != 1 {
					t.Errorf("release = %v", r)
				}
			}}},
		{goldenStep: goldenStep{cmd: cmd{SetChainState, &v1.SetChainStateCommand{TimeUnixNano: now + 43 + 3_600_000_000_000, Chain: "db-fmt-v5",
			State: v1.ChainState_CHAIN_STATE_ROLLING_BACK, Reason: "readers broke", Actor: "bob"}},
			check: func(t *testing.T, s *State) {
				if c := s.Chain("db-fmt-v5"); c.GetState() != v1.ChainState_CHAIN_STATE_ROLLING_BACK || c.GetReason() != "readers broke" {
					t.Errorf("chain = %v", c)
				}
			}}},
		// Since type 31 (SetRegionState): a release whose phase 1 is region
		// eu's own (phases.parallel_regions_after = 1) starts; its shared
		// phase 0 is verified; region eu starts.
		{goldenStep: goldenStep{cmd: cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: now + 40, Actor: "alice", Release: &v1.Release{
			Id: "geo-1.0.0", Spec: &v1.ReleaseSpec{Name: "geo-1.0.0", App: "geo", Version: "1.0.0",
				Phases: &v1.PhasesSpec{ParallelRegionsAfter: 1}, Rollback: &v1.RollbackSpec{OnFailure: "fail_local"}},
			Phases: []*v1.Phase{
				{Index: 0, Hosts: []string{"h1"}, Cells: []string{"eu-1"}, BakeMs: 60_000},
				{Index: 1, Hosts: []string{"h2"}, Cells: []string{"eu-1"}, BakeMs: 60_000, Region: "eu"},
			}}}},
			check: func(t *testing.T, s *State) {
				rg := s.Release("geo-1.0.0").GetRegions()
				if len(rg) != 1 || rg[0].GetRegion() != "eu" || rg[0].GetState() != rsPending || rg[0].GetFirstPhase() != 1 || rg[0].GetPhaseCount() != 1 || rg[0].GetCurrentPhase() != 1 {
					t.Errorf("regions = %v", rg)
				}
			}}, file: "cmd-submit-release-regions.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: now + 41, ReleaseId: "geo-1.0.0", State: rsRunning, Actor: "alice", CurrentPhase: -1}},
			check: func(t *testing.T, s *State) {
				if r := s.Release("geo-1.0.0"); r.GetState() != rsRunning {
					t.Errorf("release = %v", r)
				}
			}}, file: "cmd-set-release-state-regions.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 42, ReleaseId: "geo-1.0.0", Index: 0, State: psDeploying}},
			check: func(t *testing.T, s *State) {}}, file: "cmd-set-phase-state-regions-deploying.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 43, ReleaseId: "geo-1.0.0", Index: 0, State: psBaking, BakeDeadlineUnixNano: now + 44}},
			check: func(t *testing.T, s *State) {}}, file: "cmd-set-phase-state-regions-baking.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now + 45, ReleaseId: "geo-1.0.0", Index: 0, State: psVerified}},
			check: func(t *testing.T, s *State) {}}, file: "cmd-set-phase-state-regions-verified.bin"},
		{goldenStep: goldenStep{cmd: cmd{SetRegionState, &v1.SetRegionStateCommand{TimeUnixNano: now + 46, ReleaseId: "geo-1.0.0", Region: "eu", State: rsRunning, CurrentPhase: -1,
			Actor: "rollout", Reason: "shared phases verified", Events: []*v1.Event{{ReleaseId: "geo-1.0.0", Kind: "region.split", Phase: 1, Region: "eu", Message: "eu runs on its own"}}}},
			check: func(t *testing.T, s *State) {
				rg := s.Release("geo-1.0.0").GetRegions()[0]
				if rg.GetState() != rsRunning || rg.GetReason() != "shared phases verified" || rg.GetUpdatedUnixNano() != now+46 {
					t.Errorf("region = %v", rg)
				}
				ev := s.Events("geo-1.0.0", 0, 0)
				if last := ev[len(ev)-1]; last.GetKind() != "region.started" || last.GetRegion() != "eu" || ev[len(ev)-2].GetKind() != "region.split" {
					t.Errorf("events = %v", ev[len(ev)-2:])
				}
			}}},
	}
}

// kebab turns "SubmitRelease" into "submit-release".
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func goldenFile(t *testing.T, name string, fresh func() []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, fresh(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	return data
}

// TestGolden decodes and applies the committed log entries, one per command
// type, in order, and restores the committed snapshot: today's code must
// read what earlier versions wrote, and reach the same state.
func TestGolden(t *testing.T) {
	var steps []namedStep
	for _, st := range goldenSteps() {
		steps = append(steps, namedStep{goldenStep: st})
	}
	steps = append(steps, laterGoldenSteps()...)
	covered := map[MessageType]bool{}
	for _, st := range steps {
		covered[st.cmd.t.Base()] = true
	}
	if len(covered) != len(messageTypeNames) {
		t.Fatalf("golden steps cover %d of %d command types: add one for the new type", len(covered), len(messageTypeNames))
	}
	f := New(testutil.Logger(t))
	var atSnapshot, afterACL *FSM
	for i, step := range steps {
		name := "cmd-" + kebab(step.cmd.t.String()) + ".bin"
		if step.file != "" {
			name = step.file
		}
		data := goldenFile(t, name, func() []byte { return encodeCmd(t, step.cmd) })
		typ, _, err := Decode(data)
		if err != nil || typ != step.cmd.t {
			t.Fatalf("%s: decoded type %v, err %v", name, typ, err)
		}
		if res, err := f.ApplyEntry(uint64(i+1), data); err != nil {
			t.Fatalf("%s: %v", name, err)
		} else if res != nil && res.Skipped != 0 {
			t.Fatalf("%s: %+v", name, res)
		}
		t.Run(name, func(t *testing.T) { step.check(t, f.State()) })
		if err := CheckInvariants(f.State()); err != nil {
			t.Fatalf("after %s: %v", name, err)
		}
		// Since types 17-19: the state after the ACL steps, ACL records included.
		if name == aclSnapshotAfter {
			data := goldenFile(t, "snapshot-v1-acl.bin", func() []byte { return persist(t, f) })
			afterACL = New(testutil.Logger(t))
			if err := afterACL.Restore(nopCloser(data)); err != nil {
				t.Fatalf("restore snapshot-v1-acl.bin: %v", err)
			}
			if !afterACL.State().Equal(f.State()) {
				t.Fatalf("snapshot-v1-acl.bin restores to\n%s\nbut replaying the log gives\n%s", afterACL.State().Dump(), f.State().Dump())
			}
		}
		if step.cmd.t == snapshotAfter {
			data := goldenFile(t, "snapshot-v1.bin", func() []byte { return persist(t, f) })
			atSnapshot = New(testutil.Logger(t))
			if err := atSnapshot.Restore(nopCloser(data)); err != nil {
				t.Fatalf("restore snapshot-v1.bin: %v", err)
			}
			if !atSnapshot.State().Equal(f.State()) {
				t.Fatalf("snapshot-v1.bin restores to\n%s\nbut replaying the log gives\n%s", atSnapshot.State().Dump(), f.State().Dump())
			}
		}
	}
	if atSnapshot == nil {
		t.Fatal("no snapshot step")
	}
	if afterACL == nil {
		t.Fatal("no ACL snapshot step")
	}
	if ok, _ := afterACL.State().ACLBootstrapped(); !ok || afterACL.State().ACLToken("acc-ci").GetName() != "ci" {
		t.Errorf("restored ACL state:\n%s", afterACL.State().Dump())
	}
	s := atSnapshot.State()
	if s.AppliedIndex() != 11 || len(s.Hosts()) != 2 || len(s.Freezes()) != 1 || s.Assignment("h1", "api").GetState() != asStaging {
		t.Errorf("restored snapshot:\n%s", s.Dump())
	}
}
