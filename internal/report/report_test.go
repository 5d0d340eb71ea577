package report

import (
	"testing"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// t0 is day 0, 00:00 UTC; the window is days 0-10.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is day d plus the offset.
func at(d int, off time.Duration) int64 {
	return t0.Add(time.Duration(d)*24*time.Hour + off).UnixNano()
}

func ev(kind string, t int64) *v1.Event { return &v1.Event{Kind: kind, TimeUnixNano: t} }

// rel is a release of app, submitted at its first event's time, in state st.
func rel(id, app string, st v1.ReleaseState, acked int64, evs ...*v1.Event) Release {
	return Release{
		Release: &v1.Release{Id: id, Spec: &v1.ReleaseSpec{App: app}, State: st, CreatedUnixNano: evs[0].GetTimeUnixNano(), AckedUnixNano: acked},
		Events:  evs,
	}
}

const (
	succeeded  = v1.ReleaseState_RELEASE_STATE_SUCCEEDED
	rolledBack = v1.ReleaseState_RELEASE_STATE_ROLLED_BACK
	failedSt   = v1.ReleaseState_RELEASE_STATE_FAILED
	aborted    = v1.ReleaseState_RELEASE_STATE_ABORTED
	paused     = v1.ReleaseState_RELEASE_STATE_PAUSED
	pending    = v1.ReleaseState_RELEASE_STATE_PENDING
	h          = time.Hour
	m          = time.Minute
)

// history is a scripted record of three apps; the expected figures in
// TestCompute are worked out by hand from it.
func history() []Release {
	// web-5's events were pruned: only its failed phase dates its failure.
	web5 := rel("web-5", "web", paused, 0, ev("release.submitted", at(9, 0)))
	web5.Events = nil
	web5.Release.Phases = []*v1.Phase{{Index: 0, State: v1.PhaseState_PHASE_STATE_FAILED, FinishedUnixNano: at(9, 12*h)}}
	return []Release{
		// Before the window: neither a deployment nor a change; no failure follows it before api-1.
		rel("api-0", "api", succeeded, 0, ev("release.submitted", at(-3, 0)), ev("release.succeeded", at(-2, 0))),
		// Lead 2h.
		rel("api-1", "api", succeeded, 0, ev("release.submitted", at(0, 1*h)), ev("gate.passed", at(0, 2*h)), ev("release.succeeded", at(0, 3*h))),
		// Fails at d1 02:00 (gate.failed and rolling_back in one entry), acked 02:10, all hosts back 02:30.
		rel("api-2", "api", rolledBack, at(1, 2*h+10*m), ev("release.submitted", at(1, 0)), ev("gate.failed", at(1, 2*h)),
			ev("release.rolling_back", at(1, 2*h)), ev("host.reverted", at(1, 2*h+20*m)), ev("release.rolled_back", at(1, 2*h+30*m))),
		// Lead 5h, then lead 1h.
		rel("api-3", "api", succeeded, 0, ev("release.submitted", at(2, 0)), ev("release.succeeded", at(2, 5*h))),
		rel("api-4", "api", succeeded, 0, ev("release.submitted", at(3, 0)), ev("release.succeeded", at(3, 1*h))),
		// rollback.on_failure = pause: fails d4 06:00, acked 07:00, aborted 08:00 (never restored).
		rel("api-5", "api", aborted, at(4, 7*h), ev("release.submitted", at(4, 0)), ev("gate.failed", at(4, 6*h)),
			ev("release.paused", at(4, 6*h)), ev("release.aborted", at(4, 8*h))),
		// Aborted without a failure: not a change.
		rel("api-6", "api", aborted, 0, ev("release.submitted", at(5, 0)), ev("release.aborted", at(5, 1*h))),

		// Lead 30m.
		rel("web-1", "web", succeeded, 0, ev("release.submitted", at(0, 0)), ev("release.succeeded", at(0, 30*m))),
		// rollback.on_failure = phase: fails d6 01:00, rolled back by hand 01:20, all back 02:00; never acked.
		rel("web-2", "web", rolledBack, 0, ev("release.submitted", at(6, 0)), ev("gate.failed", at(6, 1*h)),
			ev("release.paused", at(6, 1*h)), ev("release.rolling_back", at(6, 1*h+20*m)), ev("release.rolled_back", at(6, 2*h))),
		// An operator's rollback with no gate failure is a failure (d8 00:40); the rollback is incomplete.
		rel("web-3", "web", failedSt, at(8, 45*m), ev("release.submitted", at(8, 0)), ev("release.rolling_back", at(8, 40*m)),
			ev("release.failed", at(8, 1*h))),
		web5,

		// Nothing finished: every figure but the counts is undefined.
		rel("db-1", "db", pending, 0, ev("release.submitted", at(2, 0))),
	}
}

func TestCompute(t *testing.T) {
	got := Compute(history(), t0, t0.Add(10*24*h), true)
	want := []Figures{
		{
			App: "api",
			// api-1, api-3, api-4 in 10 days.
			Deployments: 3, DeploymentsPerDay: 0.3,
			// 1h, 2h, 5h: the median is rank ceil(0.5*3) = 2, p90 rank ceil(0.9*3) = 3.
			LeadTimeMedian: 2 * h, LeadTimeP90: 5 * h,
			// api-1..api-5 ended (api-6 aborted without failing); api-2 and api-5 failed.
			Changes: 5, FailedChanges: 2, ChangeFailureRatio: 0.4,
			// d1 02:00 and d4 06:00.
			Failures: 2,
			// api-2: 02:00 -> 02:30.
			Restored: 1, TimeToRestoreMedian: 30 * m, TimeToRestoreMax: 30 * m,
			// (10m + 60m) / 2.
			Acked: 2, MTTA: 35 * m,
			// d4 06:00 - d1 02:00 = 76h, over one gap.
			MTBF: 76 * h,
			// api-2: since api-1 (d0 03:00) 23h; api-5: since api-4 (d3 01:00) 29h; mean 26h.
			MTTF: 26 * h,
		},
		{
			App: "db", DeploymentsPerDay: 0, LeadTimeMedian: Undefined, LeadTimeP90: Undefined, ChangeFailureRatio: Undefined,
			TimeToRestoreMedian: Undefined, TimeToRestoreMax: Undefined, MTTA: Undefined, MTBF: Undefined, MTTF: Undefined,
		},
		{
			App:         "web",
			Deployments: 1, DeploymentsPerDay: 0.1, LeadTimeMedian: 30 * m, LeadTimeP90: 30 * m,
			// web-1, web-2, web-3 ended; web-2 and web-3 failed.
			Changes: 3, FailedChanges: 2, ChangeFailureRatio: 2.0 / 3,
			// d6 01:00 (the gate, not the later rollback), d8 00:40, d9 12:00 (web-5's failed phase).
			Failures: 3,
			// web-2: 01:00 -> 02:00.
			Restored: 1, TimeToRestoreMedian: 60 * m, TimeToRestoreMax: 60 * m,
			// web-3: 00:40 -> 00:45.
			Acked: 1, MTTA: 5 * m,
			// (d9 12:00 - d6 01:00) / 2 = 83h / 2.
			MTBF: 41*h + 30*m,
			// Since web-1 (d0 00:30): 144h30m, 192h10m, 227h30m; sum 564h10m / 3.
			MTTF: 188*h + 3*m + 20*time.Second,
		},
		{
			App: AllApps,
			// 3 + 1.
			Deployments: 4, DeploymentsPerDay: 0.4,
			// 30m, 1h, 2h, 5h: median rank 2, p90 rank ceil(3.6) = 4.
			LeadTimeMedian: 1 * h, LeadTimeP90: 5 * h,
			Changes: 8, FailedChanges: 4, ChangeFailureRatio: 0.5,
			Failures: 5,
			// 30m, 60m: median rank 1.
			Restored: 2, TimeToRestoreMedian: 30 * m, TimeToRestoreMax: 60 * m,
			// (10m + 60m + 5m) / 3.
			Acked: 3, MTTA: 25 * m,
			// d9 12:00 - d1 02:00 = 202h, over four gaps.
			MTBF: 50*h + 30*m,
			// Each failure against its own app's last success: 23h + 29h + 144h30m + 192h10m + 227h30m = 616h10m, / 5.
			MTTF: 123*h + 14*m,
		},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		// Float ratios are compared within a rounding error; every other field exactly.
		if !near(g.DeploymentsPerDay, w.DeploymentsPerDay) || !near(g.ChangeFailureRatio, w.ChangeFailureRatio) {
			t.Errorf("%s: per day %v, change failure ratio %v; want %v, %v", w.App, g.DeploymentsPerDay, g.ChangeFailureRatio, w.DeploymentsPerDay, w.ChangeFailureRatio)
		}
		g.DeploymentsPerDay, g.ChangeFailureRatio = w.DeploymentsPerDay, w.ChangeFailureRatio
		if g != w {
			t.Errorf("%s:\n got %+v\nwant %+v", w.App, g, w)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

// One app only, and a window that leaves out everything before day 5.
func TestComputeWindowAndApp(t *testing.T) {
	var api []Release
	for _, r := range history() {
		if r.Release.GetSpec().GetApp() == "api" {
			api = append(api, r)
		}
	}
	got := Compute(api, t0.Add(5*24*h), t0.Add(10*24*h), false)
	if len(got) != 1 || got[0].App != "api" {
		t.Fatalf("rows = %+v", got)
	}
	f := got[0]
	// Only api-6 (aborted, no failure) is in days 5-10.
	if f.Deployments != 0 || f.DeploymentsPerDay != 0 || f.Changes != 0 || f.ChangeFailureRatio != Undefined || f.Failures != 0 ||
		f.MTBF != Undefined || f.MTTF != Undefined || f.MTTA != Undefined || f.LeadTimeMedian != Undefined {
		t.Fatalf("figures = %+v", f)
	}
	// An empty window has no rate.
	if f := Compute(api, t0, t0, false)[0]; f.DeploymentsPerDay != Undefined {
		t.Fatalf("per day over an empty window = %v", f.DeploymentsPerDay)
	}
	if got := Compute(nil, t0, t0.Add(h), true); len(got) != 1 || got[0].App != AllApps || got[0].Deployments != 0 {
		t.Fatalf("no releases: %+v", got)
	}
}

func TestQuantile(t *testing.T) {
	ds := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(n-i) * time.Second // descending: Quantile sorts
		}
		return out
	}
	for _, c := range []struct {
		n    int
		p    float64
		want time.Duration
	}{
		{0, 0.5, Undefined},
		{1, 0.9, time.Second},
		{2, 0.5, time.Second},        // lower middle
		{4, 0.5, 2 * time.Second},    // rank 2
		{10, 0.9, 9 * time.Second},   // rank 9
		{100, 0.07, 7 * time.Second}, // 0.07*100 is 7.000000000000001 in floating point; rank 7
		{3, 1, 3 * time.Second},
	} {
		in := ds(c.n)
		if got := Quantile(in, c.p); got != c.want {
			t.Errorf("Quantile(%d values, %v) = %v, want %v", c.n, c.p, got, c.want)
		}
		if c.n > 1 && in[0] != time.Duration(c.n)*time.Second {
			t.Errorf("Quantile sorted its input")
		}
	}
}

// BenchmarkCompute: a year of history, 20 apps with 500 releases each, one
// in five failing.
func BenchmarkCompute(b *testing.B) {
	var rels []Release
	for a := 0; a < 20; a++ {
		app := "app-" + string(rune('a'+a))
		for i := 0; i < 500; i++ {
			start := at(i*365/500, time.Duration(a)*time.Minute)
			evs := []*v1.Event{ev("release.submitted", start)}
			st := succeeded
			if i%5 == 0 {
				evs = append(evs, ev("gate.failed", start+int64(h)), ev("release.rolling_back", start+int64(h)), ev("release.rolled_back", start+int64(h+m)))
				st = rolledBack
			} else {
				evs = append(evs, ev("release.succeeded", start+int64(2*h)))
			}
			rels = append(rels, rel(app+"-"+time.Duration(i).String(), app, st, 0, evs...))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		Compute(rels, t0, t0.Add(365*24*h), true)
	}
}
