package cli

import (
	"time"

	"github.com/rollwave/rollwave/internal/freeze"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func nanos(t time.Time) int64 { return t.UnixNano() }

// fixture is a fake server with a small, consistent cluster: three
// coordinators, two cells, three hosts and one release in its second phase.
func fixture() *fakeOperator {
	f := newFakeOperator()
	f.status = &rollwavev1.StatusResponse{
		NodeId: "coord-1", RaftState: "leader", LeaderId: "coord-1", LeaderAddress: "10.0.0.1:7421",
		AppliedIndex: 41, LastIndex: 42, Version: "1.0.0",
	}
	f.members = []*rollwavev1.Member{
		{Name: "web-1", Address: "10.0.1.1:7946", Role: "agent", Status: "alive", Cell: "eu-1a", Region: "eu", Version: "1.0.0"},
		{Name: "coord-1", Address: "10.0.0.1:7946", Role: "server", Status: "alive", Region: "eu", Leader: true, Version: "1.0.0"},
	}
	f.peers = []*rollwavev1.RaftPeer{
		{Id: "coord-1", Address: "10.0.0.1:7421", Suffrage: "voter", Leader: true},
		{Id: "coord-2", Address: "10.0.0.2:7421", Suffrage: "voter"},
	}
	f.hosts = []*rollwavev1.HostView{{
		Host: &rollwavev1.Host{
			Id: "web-1", Cell: "eu-1a", Region: "eu", LastContactUnixNano: nanos(testNow.Add(-3 * time.Second)),
			Apps: []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: "2.4.0", GreenVersion: "2.3.0"}},
		},
		Liveness: "alive", Connected: true,
		Metrics: &rollwavev1.HostSample{ReceivedUnixNano: nanos(testNow.Add(-2 * time.Second)),
			Host:     &rollwavev1.HostMetrics{CpuPercent: 37.3, MemPercent: 61},
			Slots:    []*rollwavev1.SlotMetrics{{App: "api", Slot: rollwavev1.Slot_SLOT_BLUE, Version: "2.4.0", Healthy: true, CpuPercent: 12, RssBytes: 96 << 20, Restarts: 1}},
			Requests: []*rollwavev1.SlotRequests{{App: "api", Slot: rollwavev1.Slot_SLOT_BLUE, Version: "2.4.0", Protocol: "http", Requests: 480, Errors: 3, P99Ms: 23.5}},
		},
	}, {
		Host: &rollwavev1.Host{
			Id: "web-2", Cell: "eu-1b", Region: "eu",
			Apps: []*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_GREEN, BlueVersion: "2.3.0", GreenVersion: "2.4.0"}},
		},
		Liveness: "dead",
	}}
	f.cells = []*rollwavev1.CellView{
		{Cell: &rollwavev1.Cell{Name: "eu-1a", Risk: 1, Criticality: "low", Users: 1200}, Hosts: 1},
		{Cell: &rollwavev1.Cell{Name: "eu-1b", Risk: 2, Criticality: "high", Users: 50000}, Hosts: 2},
	}
	f.plan = &rollwavev1.PlanReleaseResponse{
		Spec:          &rollwavev1.ReleaseSpec{Name: "api-2.4.0", App: "api", Version: "2.4.0"},
		TargetedHosts: 6,
		Phases: []*rollwavev1.Phase{
			{Index: 0, Hosts: []string{"web-1"}, Cells: []string{"eu-1a"}, BakeMs: (30 * time.Minute).Milliseconds(), ApprovalRequired: true},
			{Index: 1, Hosts: []string{"web-2", "web-3", "web-4", "web-5", "web-6"}, Cells: []string{"eu-1a", "eu-1b"}, BakeMs: (15 * time.Minute).Milliseconds()},
		},
	}
	rel := &rollwavev1.Release{
		Id: "api-2.4.0", State: rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, CurrentPhase: 1,
		Spec:      &rollwavev1.ReleaseSpec{Name: "api-2.4.0", App: "api", Version: "2.4.0"},
		CreatedBy: "alice@laptop", CreatedUnixNano: nanos(testNow.Add(-time.Hour)),
		Phases: []*rollwavev1.Phase{
			{Index: 0, State: rollwavev1.PhaseState_PHASE_STATE_VERIFIED, Hosts: []string{"web-1"}, Cells: []string{"eu-1a"}, BakeMs: 1_800_000},
			{Index: 1, State: rollwavev1.PhaseState_PHASE_STATE_BAKING, Hosts: []string{"web-2", "web-3"}, Cells: []string{"eu-1b"},
				BakeMs: 900_000, BakeDeadlineUnixNano: nanos(testNow.Add(12*time.Minute + 30*time.Second))},
			{Index: 2, State: rollwavev1.PhaseState_PHASE_STATE_PENDING, Hosts: []string{"web-4", "web-5", "web-6"}, Cells: []string{"eu-1b"}, BakeMs: 450_000},
		},
	}
	f.release = &rollwavev1.GetReleaseResponse{
		Release: rel,
		Assignments: []*rollwavev1.Assignment{
			{Host: "web-1", App: "api", Phase: 0, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, Version: "2.4.0", TargetSlot: rollwavev1.Slot_SLOT_BLUE, Generation: 7},
			{Host: "web-2", App: "api", Phase: 1, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING, Version: "2.4.0", TargetSlot: rollwavev1.Slot_SLOT_GREEN, Generation: 3},
			{Host: "web-3", App: "api", Phase: 1, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING, Version: "2.4.0", TargetSlot: rollwavev1.Slot_SLOT_GREEN, Generation: 3},
		},
	}
	f.releases = []*rollwavev1.Release{rel}
	f.events = []*rollwavev1.Event{
		{Seq: 1, TimeUnixNano: nanos(testNow.Add(-time.Hour)), ReleaseId: "api-2.4.0", Kind: "release.submitted", Actor: "alice@laptop", Message: "submitted"},
		{Seq: 2, TimeUnixNano: nanos(testNow.Add(-50 * time.Minute)), ReleaseId: "api-2.4.0", Kind: "gate.passed", Actor: "leader", Phase: 0,
			Message: "phase 0 gates passed", Evidence: map[string]string{"cpu_p95": "41", "failed_hosts": "0"}},
		{Seq: 3, TimeUnixNano: nanos(testNow.Add(-10 * time.Minute)), ReleaseId: "api-2.4.0", Kind: "gate.reading", Actor: "leader", Phase: 1,
			Host: "web-2", Message: "bake check", Evidence: map[string]string{"mem_p95": "63", "cpu_p95": "55"}},
	}
	f.freezes = &rollwavev1.ListFreezesResponse{
		Global: true, GlobalReason: "incident",
		Windows: []*rollwavev1.FreezeWindow{
			{Id: "fz-1", FromUnixNano: nanos(testNow), ToUnixNano: nanos(testNow.Add(48 * time.Hour)), Reason: "holidays", CreatedBy: "bob@ops"},
			{Id: "fz-2", Cron: "0 18 * * FRI", DurationMs: (62 * time.Hour).Milliseconds(), Timezone: "Europe/Berlin",
				Apps: []string{"api"}, Cells: []string{"eu-1a"}, Reason: "weekend", CreatedBy: "ops"},
		},
		NowUnixNano: nanos(testNow),
	}
	for _, w := range f.freezes.Windows {
		f.freezes.Schedules = append(f.freezes.Schedules, freeze.ScheduleOf(w, testNow))
	}
	f.notify = &rollwavev1.NotifyStatusResponse{LeaderId: "coord-1", Targets: []*rollwavev1.NotifyTargetStatus{{
		Name: "ops", Type: "webhook", Url: "https://hooks.example.com/rollwave/…", Events: []string{"gate.failed", "release.*"},
		Cursor: 40, LastEventSeq: 43, LagEvents: 3, LagSeconds: 21.4, LastSuccessUnixNano: nanos(testNow.Add(-time.Minute)),
		LastError: "POST https://hooks.example.com/rollwave/…: answered 503 Service Unavailable: \"\"", LastErrorUnixNano: nanos(testNow.Add(-5 * time.Second)),
		Attempts: 12, Failures: 2, Delivered: 10, LostEvents: 4, LastLoss: "4 event(s), seq 20 to 23, pruned by retention before delivery",
	}}}
	f.report = &rollwavev1.ReportResponse{
		SinceUnixNano: nanos(testNow.Add(-30 * 24 * time.Hour)), UntilUnixNano: nanos(testNow),
		Apps: []*rollwavev1.AppReport{
			{App: "api", Deployments: 3, DeploymentsPerDay: 0.1, LeadTimeMedianMs: (2 * time.Hour).Milliseconds(), LeadTimeP90Ms: (5 * time.Hour).Milliseconds(),
				Changes: 5, FailedChanges: 2, ChangeFailureRatio: 0.4, Failures: 2, Restored: 1,
				TimeToRestoreMedianMs: (30 * time.Minute).Milliseconds(), TimeToRestoreMaxMs: (30 * time.Minute).Milliseconds(),
				Acked: 2, MttaMs: (35 * time.Minute).Milliseconds(), MtbfMs: (76 * time.Hour).Milliseconds(), MttfMs: (26 * time.Hour).Milliseconds()},
			// Nothing finished: n/a, not 0.
			{App: "db", LeadTimeMedianMs: -1, LeadTimeP90Ms: -1, ChangeFailureRatio: -1, TimeToRestoreMedianMs: -1, TimeToRestoreMaxMs: -1,
				MttaMs: -1, MtbfMs: -1, MttfMs: -1},
		},
	}
	f.restoreAt = 1234
	return f
}
