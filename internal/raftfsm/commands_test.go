package raftfsm

import (
	"errors"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// applyCase applies setup (which must succeed), then cmd. A case with
// wantErr expects a rejection wrapping that sentinel, whose message contains
// wantMsg, and checks the state did not change; otherwise it expects success
// and runs check.
type applyCase struct {
	name    string
	setup   []cmd
	cmd     cmd
	wantErr error
	wantMsg string
	check   func(t *testing.T, s *State)
}

func runCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New(testutil.Logger(t))
			mustApply(t, f, tc.setup...)
			before := dumpNoIndex(f.State())
			res := apply(t, f, tc.cmd)
			if tc.wantErr != nil {
				rej := asRejected(t, res)
				if !errors.Is(rej, tc.wantErr) {
					t.Fatalf("rejection %q wraps %v, want %v", rej, rej.Err, tc.wantErr)
				}
				if rej.Type != tc.cmd.t {
					t.Errorf("rejection type %v, want %v", rej.Type, tc.cmd.t)
				}
				if !strings.Contains(rej.Error(), tc.wantMsg) {
					t.Errorf("rejection %q does not contain %q", rej.Error(), tc.wantMsg)
				}
				if after := dumpNoIndex(f.State()); after != before {
					t.Errorf("rejected command changed state:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			} else if res != nil {
				t.Fatalf("apply: %v", res)
			}
			if tc.check != nil {
				tc.check(t, f.State())
			}
			if err := CheckInvariants(f.State()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestApplyHosts(t *testing.T) {
	runCases(t, []applyCase{
		{
			// A new host gets first_seen from the command time.
			name: "upsert new",
			cmd:  hostsCmd("eu-1", "h1", "h2"),
			check: func(t *testing.T, s *State) {
				if n := len(s.Hosts()); n != 2 {
					t.Fatalf("%d hosts, want 2", n)
				}
				if h := s.Host("h1"); h.GetFirstSeenUnixNano() != t0 || h.GetCell() != "eu-1" {
					t.Errorf("h1 = %v", h)
				}
			},
		},
		{
			// Merge: first_seen kept, set fields overwrite, empty ones keep,
			// last contact only moves forward, slot facts replaced per app.
			name: "upsert merges",
			setup: one(cmd{UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: t0, Hosts: []*v1.Host{{
				Id: "h1", Cell: "eu-1", Region: "eu", LastContactUnixNano: t0 + 5, Labels: map[string]string{"a": "1"},
				Apps: []*v1.SlotFacts{{App: "web", BlueVersion: "1"}, {App: "api", BlueVersion: "1"}},
			}}}}),
			cmd: cmd{UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: t0 + 100, Hosts: []*v1.Host{{
				Id: "h1", Address: "10.0.0.1:7070", FirstSeenUnixNano: 1, LastContactUnixNano: t0 + 1,
				Apps: []*v1.SlotFacts{{App: "api", BlueVersion: "2"}},
			}}}},
			check: func(t *testing.T, s *State) {
				h := s.Host("h1")
				if h.GetFirstSeenUnixNano() != t0 || h.GetCell() != "eu-1" || h.GetAddress() != "10.0.0.1:7070" ||
					h.GetLastContactUnixNano() != t0+5 || h.GetLabels()["a"] != "1" {
					t.Errorf("merged host = %v", h)
				}
				if len(h.GetApps()) != 2 || h.GetApps()[0].GetApp() != "api" || h.GetApps()[0].GetBlueVersion() != "2" {
					t.Errorf("slot facts = %v", h.GetApps())
				}
			},
		},
		{
			// One bad host rejects the whole batch.
			name:    "upsert empty id",
			cmd:     cmd{UpsertHosts, &v1.UpsertHostsCommand{Hosts: []*v1.Host{{Id: "ok"}, {Id: ""}}}},
			wantErr: ErrInvalid, wantMsg: "hosts[1]: id is required",
		},
		{
			name:  "delete",
			setup: one(hostsCmd("eu-1", "h1")),
			cmd:   cmd{DeleteHost, &v1.DeleteHostCommand{Id: "h1"}},
			check: func(t *testing.T, s *State) {
				if s.Host("h1") != nil {
					t.Error("h1 still there")
				}
			},
		},
		{
			name:    "delete unknown",
			cmd:     cmd{DeleteHost, &v1.DeleteHostCommand{Id: "nope"}},
			wantErr: ErrNotFound, wantMsg: `host "nope" does not exist`,
		},
		{
			// A host mid-rollout cannot disappear.
			name:    "delete with active assignment",
			setup:   with(base(), one(assignCmd("h1", "api", "api-1", 1))),
			cmd:     cmd{DeleteHost, &v1.DeleteHostCommand{Id: "h1"}},
			wantErr: ErrConflict, wantMsg: `host "h1" is still running release "api-1"`,
		},
		{
			// Once the assignment ended the host may go; history stays.
			name:  "delete after assignment ended",
			setup: with(base(), one(assignCmd("h1", "api", "api-1", 1), updateCmd("h1", "api", 1, asFailed))),
			cmd:   cmd{DeleteHost, &v1.DeleteHostCommand{Id: "h1"}},
			check: func(t *testing.T, s *State) {
				if s.Assignment("h1", "api").GetGeneration() != 1 {
					t.Error("assignment history lost")
				}
			},
		},
	})
}

func TestApplyCells(t *testing.T) {
	runCases(t, []applyCase{
		{
			name: "set",
			cmd:  cellCmd("eu-1", 2, "high", 500),
			check: func(t *testing.T, s *State) {
				c := s.Cell("eu-1")
				if c.GetRisk() != 2 || c.GetCriticality() != "high" || c.GetUsers() != 500 || c.GetUpdatedUnixNano() != t0 {
					t.Errorf("cell = %v", c)
				}
			},
		},
		{
			name:  "set replaces",
			setup: one(cellCmd("eu-1", 2, "high", 500)),
			cmd:   cellCmd("eu-1", 0, "low", 0),
			check: func(t *testing.T, s *State) {
				if c := s.Cell("eu-1"); c.GetRisk() != 0 || c.GetCriticality() != "low" {
					t.Errorf("cell = %v", c)
				}
			},
		},
		{name: "nil cell", cmd: cmd{SetCell, &v1.SetCellCommand{}}, wantErr: ErrInvalid, wantMsg: "cell is required"},
		{name: "no name", cmd: cellCmd("", 1, "low", 1), wantErr: ErrInvalid, wantMsg: "cell name is required"},
		{name: "bad criticality", cmd: cellCmd("c", 1, "extreme", 1), wantErr: ErrInvalid, wantMsg: `criticality "extreme" must be one of`},
		{name: "negative risk", cmd: cellCmd("c", -1, "low", 1), wantErr: ErrInvalid, wantMsg: "risk -1 must be >= 0"},
		{name: "negative users", cmd: cellCmd("c", 1, "low", -5), wantErr: ErrInvalid, wantMsg: "users -5 must be >= 0"},
		{
			name:  "delete",
			setup: one(cellCmd("eu-1", 1, "low", 1)),
			cmd:   cmd{DeleteCell, &v1.DeleteCellCommand{Name: "eu-1"}},
			check: func(t *testing.T, s *State) {
				if s.Cell("eu-1") != nil {
					t.Error("cell still there")
				}
			},
		},
		{name: "delete unknown", cmd: cmd{DeleteCell, &v1.DeleteCellCommand{Name: "x"}}, wantErr: ErrNotFound, wantMsg: `cell "x" does not exist`},
		{
			name:    "delete with hosts",
			setup:   one(cellCmd("eu-1", 1, "low", 1), hostsCmd("eu-1", "h1", "h2")),
			cmd:     cmd{DeleteCell, &v1.DeleteCellCommand{Name: "eu-1"}},
			wantErr: ErrConflict, wantMsg: `cell "eu-1" still has 2 host(s)`,
		},
	})
}

func TestApplySubmitRelease(t *testing.T) {
	runCases(t, []applyCase{
		{
			// A new release is pending, active for its app, and audited.
			name: "submit",
			cmd:  submitCmd("api-1", "api", 3),
			check: func(t *testing.T, s *State) {
				r := s.Release("api-1")
				if r.GetState() != rsPending || r.GetCreatedUnixNano() != t0 || r.GetCreatedBy() != "alice" || len(r.GetPhases()) != 3 {
					t.Errorf("release = %v", r)
				}
				for _, p := range r.GetPhases() {
					if p.GetState() != psPending {
						t.Errorf("phase %d is %v", p.GetIndex(), p.GetState())
					}
				}
				if s.App("api").GetActiveReleaseId() != "api-1" || s.ActiveRelease("api").GetId() != "api-1" {
					t.Errorf("app = %v", s.App("api"))
				}
				ev := s.Events("api-1", 0, 0)
				if len(ev) != 1 || ev[0].GetKind() != "release.submitted" || ev[0].GetSeq() != 1 {
					t.Errorf("events = %v", ev)
				}
			},
		},
		{name: "nil release", cmd: cmd{SubmitRelease, &v1.SubmitReleaseCommand{}}, wantErr: ErrInvalid, wantMsg: "release is required"},
		{name: "no id", cmd: submitCmd("", "api", 1), wantErr: ErrInvalid, wantMsg: "release id is required"},
		{name: "no app", cmd: submitCmd("r", "", 1), wantErr: ErrInvalid, wantMsg: `release "r": spec.app is required`},
		{
			name:    "duplicate id",
			setup:   one(submitCmd("r", "api", 1), relStateCmd("r", rsAborted)),
			cmd:     submitCmd("r", "api", 1),
			wantErr: ErrExists, wantMsg: `release "r" already exists`,
		},
		{
			// The message names the release in the way.
			name:    "app has active release",
			setup:   one(submitCmd("api-2.4.0", "api", 1), relStateCmd("api-2.4.0", rsRunning)),
			cmd:     submitCmd("api-2.5.0", "api", 1),
			wantErr: ErrConflict, wantMsg: `app "api" already has release "api-2.4.0" (running); abort or finish it first`,
		},
		{
			// Other apps are independent.
			name:  "other app active",
			setup: one(submitCmd("web-1", "web", 1)),
			cmd:   submitCmd("api-1", "api", 1),
		},
		{
			// After the previous release ended, a new one may start.
			name:  "after terminal",
			setup: one(submitCmd("api-1", "api", 1), relStateCmd("api-1", rsAborted)),
			cmd:   submitCmd("api-2", "api", 1),
			check: func(t *testing.T, s *State) {
				if got := s.Releases("api"); len(got) != 2 || got[0].GetId() != "api-1" {
					t.Errorf("releases = %v", got)
				}
				if got := s.Releases("api", rsAborted); len(got) != 1 || got[0].GetId() != "api-1" {
					t.Errorf("aborted releases = %v", got)
				}
			},
		},
		{
			name: "non-pending state",
			cmd: func() cmd {
				r := releaseMsg("r", "api", 1)
				r.State = rsRunning
				return cmd{SubmitRelease, &v1.SubmitReleaseCommand{Release: r}}
			}(),
			wantErr: ErrInvalid, wantMsg: "must be pending, not running",
		},
		{
			name: "phase misnumbered",
			cmd: func() cmd {
				r := releaseMsg("r", "api", 2)
				r.Phases[1].Index = 5
				return cmd{SubmitRelease, &v1.SubmitReleaseCommand{Release: r}}
			}(),
			wantErr: ErrInvalid, wantMsg: "phases[1] has index 5",
		},
	})
}

func TestApplySetReleaseState(t *testing.T) {
	runCases(t, []applyCase{
		{
			name:  "pause with current phase",
			setup: base(),
			cmd:   cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 5, ReleaseId: "api-1", State: rsPaused, Reason: "lunch", CurrentPhase: 1}},
			check: func(t *testing.T, s *State) {
				r := s.Release("api-1")
				if r.GetState() != rsPaused || r.GetCurrentPhase() != 1 || r.GetReason() != "lunch" || r.GetUpdatedUnixNano() != t0+5 {
					t.Errorf("release = %v", r)
				}
				if ev := s.Events("api-1", 0, 0); ev[len(ev)-1].GetKind() != "release.paused" {
					t.Errorf("last event = %v", ev[len(ev)-1])
				}
			},
		},
		{name: "unknown release", cmd: relStateCmd("nope", rsRunning), wantErr: ErrNotFound, wantMsg: `release "nope" does not exist`},
		{
			name:    "illegal transition",
			setup:   one(submitCmd("api-1", "api", 1)),
			cmd:     relStateCmd("api-1", rsSucceed),
			wantErr: ErrIllegalTransition, wantMsg: `release "api-1" cannot go from pending to succeeded`,
		},
		{
			name:    "terminal is final",
			setup:   with(base(), one(relStateCmd("api-1", rsAborted))),
			cmd:     relStateCmd("api-1", rsRunning),
			wantErr: ErrIllegalTransition, wantMsg: "from aborted to running",
		},
		{
			name:    "current phase out of range",
			setup:   base(),
			cmd:     cmd{SetReleaseState, &v1.SetReleaseStateCommand{ReleaseId: "api-1", State: rsPaused, CurrentPhase: 2}},
			wantErr: ErrInvalid, wantMsg: "current_phase 2 out of range",
		},
		{
			// Success frees the app and records its new version.
			name:  "succeeded",
			setup: base(),
			cmd:   relStateCmd("api-1", rsSucceed),
			check: func(t *testing.T, s *State) {
				a := s.App("api")
				if a.GetActiveReleaseId() != "" || a.GetCurrentVersion() != "v-api-1" || s.ActiveRelease("api") != nil {
					t.Errorf("app = %v", a)
				}
			},
		},
		{
			// Rolled back frees the app but keeps the old version.
			name:  "rolled back",
			setup: with(base(), one(relStateCmd("api-1", rsRollBack))),
			cmd:   relStateCmd("api-1", rsRolled),
			check: func(t *testing.T, s *State) {
				if a := s.App("api"); a.GetActiveReleaseId() != "" || a.GetCurrentVersion() != "" {
					t.Errorf("app = %v", a)
				}
			},
		},
		{
			// Abort abandons live assignments and leaves ended ones alone.
			name: "abort abandons",
			setup: with(base(), one(
				assignCmd("h1", "api", "api-1", 1), updateCmd("h1", "api", 1, asStaging),
				assignCmd("h2", "api", "api-1", 1), updateCmd("h2", "api", 1, asFailed),
			)),
			cmd: relStateCmd("api-1", rsAborted),
			check: func(t *testing.T, s *State) {
				if a := s.Assignment("h1", "api"); a.GetState() != asAbandoned {
					t.Errorf("h1 = %v", a)
				}
				if a := s.Assignment("h2", "api"); a.GetState() != asFailed {
					t.Errorf("h2 = %v", a)
				}
				if s.App("api").GetActiveReleaseId() != "" {
					t.Error("app still has an active release")
				}
			},
		},
	})
}

func TestApplyPhases(t *testing.T) {
	runCases(t, []applyCase{
		{
			name:  "deploying sets started",
			setup: base(),
			cmd:   phaseCmd("api-1", 0, psDeploying),
			check: func(t *testing.T, s *State) {
				if p := s.Release("api-1").GetPhases()[0]; p.GetState() != psDeploying || p.GetStartedUnixNano() != t0+20 {
					t.Errorf("phase = %v", p)
				}
			},
		},
		{
			name:  "baking sets deadline",
			setup: with(base(), one(phaseCmd("api-1", 0, psDeploying))),
			cmd:   phaseCmd("api-1", 0, psBaking),
			check: func(t *testing.T, s *State) {
				if p := s.Release("api-1").GetPhases()[0]; p.GetState() != psBaking || p.GetBakeDeadlineUnixNano() != t0+1000 {
					t.Errorf("phase = %v", p)
				}
			},
		},
		{
			name:  "verified sets finished",
			setup: with(base(), one(phaseCmd("api-1", 0, psDeploying), phaseCmd("api-1", 0, psBaking))),
			cmd:   phaseCmd("api-1", 0, psVerified),
			check: func(t *testing.T, s *State) {
				if p := s.Release("api-1").GetPhases()[0]; p.GetState() != psVerified || p.GetFinishedUnixNano() != t0+20 {
					t.Errorf("phase = %v", p)
				}
			},
		},
		{name: "pending to failed", setup: base(), cmd: phaseCmd("api-1", 1, psFailed)},
		{
			// A decision's evidence lands in the same entry, before the
			// transition's own event, with the command's time.
			name:  "evidence in the same entry",
			setup: with(base(), one(phaseCmd("api-1", 0, psDeploying), phaseCmd("api-1", 0, psBaking))),
			cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: t0 + 20, ReleaseId: "api-1", Index: 0, State: psFailed, Reason: "gate failed",
				Events: []*v1.Event{{ReleaseId: "api-1", Kind: "gate.failed", Evidence: map[string]string{"gate": "max_cpu_percent"}}}}},
			check: func(t *testing.T, s *State) {
				ev := s.Events("api-1", 0, 0)
				gate, trans := ev[len(ev)-2], ev[len(ev)-1]
				if gate.GetKind() != "gate.failed" || gate.GetTimeUnixNano() != t0+20 || trans.GetKind() != "phase.failed" {
					t.Errorf("events = %v, %v", gate, trans)
				}
			},
		},
		{
			// Bad evidence refuses the decision too: neither is applied.
			name:  "evidence without a kind",
			setup: with(base(), one(phaseCmd("api-1", 0, psDeploying), phaseCmd("api-1", 0, psBaking))),
			cmd: cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: t0 + 20, ReleaseId: "api-1", Index: 0, State: psFailed,
				Events: []*v1.Event{{ReleaseId: "api-1", Kind: "gate.failed"}, {ReleaseId: "api-1"}}}},
			wantErr: ErrInvalid, wantMsg: "events[1]: kind is required",
		},
		{
			name:  "release decision with evidence without a kind",
			setup: base(),
			cmd: cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: t0 + 20, ReleaseId: "api-1", State: rsPaused, CurrentPhase: -1,
				Events: []*v1.Event{{ReleaseId: "api-1"}}}},
			wantErr: ErrInvalid, wantMsg: "events[0]: kind is required",
		},
		{
			name: "illegal", setup: base(), cmd: phaseCmd("api-1", 0, psBaking),
			wantErr: ErrIllegalTransition, wantMsg: `release "api-1" phase 0 cannot go from pending to baking`,
		},
		{
			name: "verified is final", setup: with(base(), one(phaseCmd("api-1", 0, psDeploying), phaseCmd("api-1", 0, psBaking), phaseCmd("api-1", 0, psVerified))),
			cmd: phaseCmd("api-1", 0, psFailed), wantErr: ErrIllegalTransition, wantMsg: "from verified to failed",
		},
		{name: "no such phase", setup: base(), cmd: phaseCmd("api-1", 2, psDeploying), wantErr: ErrNotFound, wantMsg: `release "api-1" has no phase 2`},
		{name: "negative phase", setup: base(), cmd: phaseCmd("api-1", -1, psDeploying), wantErr: ErrNotFound, wantMsg: "has no phase -1"},
		{name: "unknown release", cmd: phaseCmd("x", 0, psDeploying), wantErr: ErrNotFound, wantMsg: `release "x" does not exist`},
		{
			name: "terminal release", setup: with(base(), one(relStateCmd("api-1", rsAborted))),
			cmd: phaseCmd("api-1", 0, psDeploying), wantErr: ErrConflict, wantMsg: "is aborted",
		},
		{
			name:  "approve",
			setup: base(),
			cmd:   cmd{ApprovePhase, &v1.ApprovePhaseCommand{TimeUnixNano: t0, ReleaseId: "api-1", Index: 1, Actor: "bob"}},
			check: func(t *testing.T, s *State) {
				if !s.Release("api-1").GetPhases()[1].GetApproved() {
					t.Error("not approved")
				}
				if ev := s.Events("", 0, 0); ev[len(ev)-1].GetKind() != "phase.approved" || ev[len(ev)-1].GetActor() != "bob" {
					t.Errorf("last event = %v", ev[len(ev)-1])
				}
			},
		},
		{
			name: "approve not required", setup: base(),
			cmd:     cmd{ApprovePhase, &v1.ApprovePhaseCommand{ReleaseId: "api-1", Index: 0}},
			wantErr: ErrInvalid, wantMsg: "phase 0 does not require approval",
		},
		{
			name:    "approve twice",
			setup:   with(base(), one(cmd{ApprovePhase, &v1.ApprovePhaseCommand{ReleaseId: "api-1", Index: 1}})),
			cmd:     cmd{ApprovePhase, &v1.ApprovePhaseCommand{ReleaseId: "api-1", Index: 1}},
			wantErr: ErrConflict, wantMsg: "already approved",
		},
		{
			name: "approve no phase", setup: base(),
			cmd:     cmd{ApprovePhase, &v1.ApprovePhaseCommand{ReleaseId: "api-1", Index: 7}},
			wantErr: ErrNotFound, wantMsg: "has no phase 7",
		},
	})
}

func TestApplyCreateAssignments(t *testing.T) {
	batch := func(as ...*v1.Assignment) cmd {
		return cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: t0, Assignments: as}}
	}
	a := func(host string, gen uint64) *v1.Assignment {
		return &v1.Assignment{Host: host, App: "api", Generation: gen, ReleaseId: "api-1"}
	}
	runCases(t, []applyCase{
		{
			name:  "create",
			setup: base(),
			cmd:   batch(a("h1", 1), a("h2", 3)),
			check: func(t *testing.T, s *State) {
				got := s.ReleaseAssignments("api-1")
				if len(got) != 2 || got[0].GetHost() != "h1" || got[1].GetGeneration() != 3 || got[0].GetState() != asAssigned || got[0].GetCreatedUnixNano() != t0 {
					t.Errorf("assignments = %v", got)
				}
				if h := s.HostAssignments("h2"); len(h) != 1 || h[0].GetGeneration() != 3 {
					t.Errorf("h2 assignments = %v", h)
				}
			},
		},
		{
			// A newer generation after the previous ended; history is kept.
			name:  "next generation",
			setup: with(base(), one(assignCmd("h1", "api", "api-1", 1), updateCmd("h1", "api", 1, asFailed))),
			cmd:   batch(a("h1", 2)),
			check: func(t *testing.T, s *State) {
				if got := s.ReleaseAssignments("api-1"); len(got) != 2 || got[0].GetGeneration() != 1 || got[1].GetGeneration() != 2 {
					t.Errorf("history = %v", got)
				}
				if s.Assignment("h1", "api").GetGeneration() != 2 {
					t.Error("current is not generation 2")
				}
			},
		},
		{name: "generation zero", setup: base(), cmd: batch(a("h1", 0)), wantErr: ErrInvalid, wantMsg: "generation must be > 0"},
		{name: "no host", setup: base(), cmd: batch(a("", 1)), wantErr: ErrInvalid, wantMsg: "host and app are required"},
		{name: "unknown host", setup: base(), cmd: batch(a("h9", 1)), wantErr: ErrNotFound, wantMsg: `host "h9" is not registered`},
		{
			name: "unknown release", setup: base(),
			cmd:     batch(&v1.Assignment{Host: "h1", App: "api", Generation: 1, ReleaseId: "x"}),
			wantErr: ErrNotFound, wantMsg: `release "x" does not exist`,
		},
		{
			name: "wrong app", setup: base(),
			cmd:     batch(&v1.Assignment{Host: "h1", App: "web", Generation: 1, ReleaseId: "api-1"}),
			wantErr: ErrInvalid, wantMsg: `is for app "api", not "web"`,
		},
		{
			name: "bad phase", setup: base(),
			cmd:     batch(&v1.Assignment{Host: "h1", App: "api", Generation: 1, ReleaseId: "api-1", Phase: 4}),
			wantErr: ErrInvalid, wantMsg: "has no phase 4",
		},
		{
			name: "not assigned state", setup: base(),
			cmd:     batch(&v1.Assignment{Host: "h1", App: "api", Generation: 1, ReleaseId: "api-1", State: asHealthy}),
			wantErr: ErrInvalid, wantMsg: "must be assigned, not healthy",
		},
		{
			name: "previous still active", setup: with(base(), one(assignCmd("h1", "api", "api-1", 1))),
			cmd: batch(a("h1", 2)), wantErr: ErrConflict, wantMsg: "generation 1 (release \"api-1\") is still assigned",
		},
		{
			name: "generation not increasing", setup: with(base(), one(assignCmd("h1", "api", "api-1", 5), updateCmd("h1", "api", 5, asFailed))),
			cmd: batch(a("h1", 5)), wantErr: ErrConflict, wantMsg: "generation 5 must exceed 5",
		},
		{name: "twice in batch", setup: base(), cmd: batch(a("h1", 1), a("h1", 2)), wantErr: ErrInvalid, wantMsg: "appears twice"},
		{
			// The decision's audit event travels in the same entry.
			name:  "with its event",
			setup: base(),
			cmd: cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: t0, Assignments: []*v1.Assignment{a("h1", 1)},
				Events: []*v1.Event{{Kind: "hosts.assigned", ReleaseId: "api-1", Actor: "rollout", Evidence: map[string]string{"hosts": "h1"}}}}},
			check: func(t *testing.T, s *State) {
				ev := s.Events("api-1", 0, 0)
				if last := ev[len(ev)-1]; last.GetKind() != "hosts.assigned" || last.GetTimeUnixNano() != t0 || last.GetEvidence()["hosts"] != "h1" {
					t.Errorf("last event = %v", last)
				}
			},
		},
		{
			// A refused batch writes neither the assignments nor the event.
			name: "event without kind", setup: base(),
			cmd: cmd{CreateAssignments, &v1.CreateAssignmentsCommand{TimeUnixNano: t0, Assignments: []*v1.Assignment{a("h1", 1)},
				Events: []*v1.Event{{ReleaseId: "api-1"}}}},
			wantErr: ErrInvalid, wantMsg: "events[0]: kind is required",
		},
		{
			// One bad entry rejects the batch: h1 is not created either.
			name: "all or nothing", setup: base(), cmd: batch(a("h1", 1), a("h9", 1)),
			wantErr: ErrNotFound, wantMsg: "assignments[1]",
		},
		{
			name: "terminal release", setup: with(base(), one(relStateCmd("api-1", rsAborted))),
			cmd: batch(a("h1", 1)), wantErr: ErrConflict, wantMsg: `release "api-1" is aborted`,
		},
	})
}

func TestApplyUpdateAssignments(t *testing.T) {
	f := New(testutil.Logger(t))
	mustApply(t, f, with(base(), one(
		assignCmd("h1", "api", "api-1", 1), updateCmd("h1", "api", 1, asFailed),
		assignCmd("h1", "api", "api-1", 2),
		assignCmd("h2", "api", "api-1", 1),
	))...)
	res := apply(t, f, cmd{UpdateAssignments, &v1.UpdateAssignmentsCommand{TimeUnixNano: t0 + 99, Updates: []*v1.AssignmentUpdate{
		{Host: "h1", App: "api", Generation: 2, State: asStaging, Reason: "fetching"}, // applied
		{Host: "h1", App: "api", Generation: 1, State: asReverting},                   // stale generation
		{Host: "h2", App: "api", Generation: 1, State: asHealthy},                     // illegal: assigned -> healthy
		{Host: "h3", App: "api", Generation: 1, State: asStaging},                     // unknown host
		{Host: "h2", App: "api", Generation: 1, State: asStaging},                     // applied
		{Host: "h2", App: "api", Generation: 1, State: asSwitched},                    // applied, in order
		{Host: "h2", App: "api", Generation: 1, State: asSwitched},                    // repeat: not a transition
	}}})
	ur, ok := res.(*UpdateResult)
	if !ok {
		t.Fatalf("result %T %v, want *UpdateResult", res, res)
	}
	if *ur != (UpdateResult{Applied: 3, Skipped: 4}) {
		t.Errorf("result = %+v, want 3 applied, 4 skipped", *ur)
	}
	if a := f.State().Assignment("h1", "api"); a.GetState() != asStaging || a.GetReason() != "fetching" || a.GetUpdatedUnixNano() != t0+99 {
		t.Errorf("h1 = %v", a)
	}
	if a := f.State().Assignment("h2", "api"); a.GetState() != asSwitched {
		t.Errorf("h2 = %v", a)
	}
	// Walk the rest of the happy path and the revert path.
	for _, st := range []v1.AssignmentState{asSwitched, asBaking, asHealthy, asFinalized} {
		if res := apply(t, f, updateCmd("h1", "api", 2, st)); *res.(*UpdateResult) != (UpdateResult{Applied: 1}) {
			t.Fatalf("update to %v: %+v", st, res)
		}
	}
	for _, st := range []v1.AssignmentState{asBaking, asReverting, asReverted} {
		if res := apply(t, f, updateCmd("h2", "api", 1, st)); *res.(*UpdateResult) != (UpdateResult{Applied: 1}) {
			t.Fatalf("update to %v: %+v", st, res)
		}
	}
	// Ended states accept nothing but the failed -> revert path.
	if res := apply(t, f, updateCmd("h2", "api", 1, asStaging)); *res.(*UpdateResult) != (UpdateResult{Skipped: 1}) {
		t.Fatalf("update after reverted: %+v", res)
	}
	if err := CheckInvariants(f.State()); err != nil {
		t.Fatal(err)
	}
}

func TestApplyEventsAndFreezes(t *testing.T) {
	freeze := func(id string, from, to int64) cmd {
		return cmd{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: t0, Window: &v1.FreezeWindow{Id: id, FromUnixNano: from, ToUnixNano: to, Reason: "holidays", CreatedBy: "ops"}}}
	}
	runCases(t, []applyCase{
		{
			// The FSM assigns seqs, ignoring what the proposer sent, and fills in time.
			name:  "append events",
			setup: one(submitCmd("r", "api", 1)),
			cmd: cmd{AppendEvents, &v1.AppendEventsCommand{TimeUnixNano: t0 + 7, Events: []*v1.Event{
				{Seq: 99, ReleaseId: "r", Kind: "gate.failed", Evidence: map[string]string{"cpu": "95"}},
				{Kind: "host.reverted", Host: "h1", TimeUnixNano: 5},
			}}},
			check: func(t *testing.T, s *State) {
				ev := s.Events("", 0, 0)
				if len(ev) != 3 || ev[1].GetSeq() != 2 || ev[2].GetSeq() != 3 || ev[1].GetTimeUnixNano() != t0+7 || ev[2].GetTimeUnixNano() != 5 {
					t.Fatalf("events = %v", ev)
				}
				if got := s.Events("r", 0, 0); len(got) != 2 {
					t.Errorf("release events = %v", got)
				}
				if got := s.Events("", 1, 1); len(got) != 1 || got[0].GetSeq() != 2 {
					t.Errorf("after 1 limit 1 = %v", got)
				}
				if got := s.Events("", 3, 0); len(got) != 0 {
					t.Errorf("after 3 = %v", got)
				}
			},
		},
		{
			name:    "event without kind",
			cmd:     cmd{AppendEvents, &v1.AppendEventsCommand{Events: []*v1.Event{{Kind: "x"}, {}}}},
			wantErr: ErrInvalid, wantMsg: "events[1]: kind is required",
		},
		{
			name: "add freeze",
			cmd:  freeze("xmas", 10, 20),
			check: func(t *testing.T, s *State) {
				if fr := s.Freezes(); len(fr) != 1 || fr[0].GetId() != "xmas" || fr[0].GetCreatedUnixNano() != t0 {
					t.Errorf("freezes = %v", fr)
				}
			},
		},
		{name: "freeze from after to", cmd: freeze("x", 20, 20), wantErr: ErrInvalid, wantMsg: "from (20) must be before to (20)"},
		{name: "freeze no id", cmd: freeze("", 1, 2), wantErr: ErrInvalid, wantMsg: "id is required"},
		{name: "freeze nil", cmd: cmd{AddFreeze, &v1.AddFreezeCommand{}}, wantErr: ErrInvalid, wantMsg: "window is required"},
		{name: "freeze duplicate", setup: one(freeze("x", 1, 2)), cmd: freeze("x", 3, 4), wantErr: ErrExists, wantMsg: `"x" already exists`},
		{
			name: "remove freeze", setup: one(freeze("x", 1, 2)),
			cmd: cmd{RemoveFreeze, &v1.RemoveFreezeCommand{Id: "x"}},
			check: func(t *testing.T, s *State) {
				if len(s.Freezes()) != 0 {
					t.Error("freeze still there")
				}
			},
		},
		{name: "remove unknown freeze", cmd: cmd{RemoveFreeze, &v1.RemoveFreezeCommand{Id: "x"}}, wantErr: ErrNotFound, wantMsg: `"x" does not exist`},
		{
			name: "global freeze on",
			cmd:  cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{On: true, Reason: "incident 42"}},
			check: func(t *testing.T, s *State) {
				if on, why := s.GlobalFreeze(); !on || why != "incident 42" {
					t.Errorf("global freeze = %v %q", on, why)
				}
			},
		},
		{
			name:  "global freeze off",
			setup: one(cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{On: true, Reason: "r"}}),
			cmd:   cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{}},
			check: func(t *testing.T, s *State) {
				if on, _ := s.GlobalFreeze(); on {
					t.Error("still frozen")
				}
			},
		},
		{name: "global freeze without reason", cmd: cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{On: true}}, wantErr: ErrInvalid, wantMsg: "needs a reason"},
	})
}
