// Package report computes delivery and incident figures per app from
// releases and their audit events as the replicated state keeps them
// (`rollwave report`, the rollwave_delivery_* metrics). It is pure: the
// caller reads the state and passes the window; nothing here reads a clock.
//
// Definitions (docs/operations.md, "Delivery and incident report"). The
// window is [From, To]; every figure is undefined (Undefined, shown as
// n/a) when it has no data, never 0.
//
//   - A release *succeeds* at its release.succeeded event, *ends* at its
//     terminal event (succeeded, rolled_back, failed, aborted).
//   - A release *fails* at the earliest of its gate.failed events (host
//     budgets included), the finish of a failed phase, and its
//     release.rolling_back event (a rollback ordered by hand is a failure
//     too). That time is the alert's: rollwave's notifications send these
//     events as they are written.
//   - Deployments: releases that succeeded in the window; per day: that
//     count divided by the window's length in days.
//   - Lead time: release.submitted -> release.succeeded of those releases;
//     median and p90.
//   - Changes: releases that ended in the window, except those aborted
//     without a failure. Failed changes: those of them that failed at any
//     point (rolled back, failed, or a failed phase before they went on).
//     Change failure ratio = failed changes / changes.
//   - Failures: releases whose failure time is in the window.
//   - Time to restore: failure -> release.rolled_back (the orchestrator
//     writes it once every host the release switched is back on the
//     previous version), over the failures in the window that rolled back;
//     median and max. A failure that did not roll back (failed, aborted,
//     resumed, still open) is not restored and is left out.
//   - MTTA: failure -> `rollwave release ack`, mean over the failures in
//     the window that were acknowledged.
//   - MTBF: mean time between consecutive failures in the window
//     ((last - first) / (n - 1)); needs two failures.
//   - MTTF: for each failure in the window, the time since the app's
//     latest success before it (that success may be before the window);
//     the mean over failures that had one.
//
// Quantiles use the nearest rank: the p-quantile of n sorted values is the
// value at rank ceil(p*n) (1-based), so the median of an even count is the
// lower middle value. Nothing is interpolated, so figures are values that
// occurred.
package report

import (
	"math"
	"slices"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Undefined marks a duration or ratio without data ("n/a").
const Undefined = -1

// AllApps names the row that pools every app.
const AllApps = "all"

// Kinds are the event kinds the figures read; callers may pass only these.
var Kinds = []string{
	"release.submitted", "release.succeeded", "release.rolled_back", "release.failed", "release.aborted",
	"release.rolling_back", "gate.failed",
}

// Release is one release and its events (any order; others are ignored).
type Release struct {
	Release *v1.Release
	Events  []*v1.Event
}

// Figures are one app's (or AllApps') figures over a window. Durations and
// ratios are Undefined when they have no data.
type Figures struct {
	App                 string
	Deployments         int
	DeploymentsPerDay   float64
	LeadTimeMedian      time.Duration
	LeadTimeP90         time.Duration
	Changes             int
	FailedChanges       int
	ChangeFailureRatio  float64
	Failures            int
	Restored            int
	TimeToRestoreMedian time.Duration
	TimeToRestoreMax    time.Duration
	Acked               int
	MTTA                time.Duration
	MTBF                time.Duration
	MTTF                time.Duration
}

// timeline is what one release contributes: Unix nanoseconds, 0 = never.
type timeline struct {
	app         string
	submitted   int64
	succeeded   int64
	ended       int64
	aborted     bool
	failed      int64 // failure time; see the package comment
	failedState bool  // failed at some point, even with no time known
	restored    int64
	acked       int64
	prevSuccess int64 // the app's latest success before failed
}

func timelineOf(in Release) timeline {
	r := in.Release
	tl := timeline{app: r.GetSpec().GetApp(), submitted: r.GetCreatedUnixNano(), acked: r.GetAckedUnixNano()}
	earliest := func(cur, t int64) int64 {
		if cur == 0 || t < cur {
			return t
		}
		return cur
	}
	for _, e := range in.Events {
		t := e.GetTimeUnixNano()
		switch e.GetKind() {
		case "release.submitted":
			tl.submitted = t
		case "release.succeeded":
			tl.succeeded, tl.ended = t, t
		case "release.rolled_back":
			tl.restored, tl.ended = t, t
		case "release.failed", "release.partially_succeeded":
			// partially_succeeded: some regions were rolled back
			// (fail_local); its failed phase makes it a failure.
			tl.ended = t
		case "release.aborted":
			tl.ended, tl.aborted = t, true
		case "gate.failed", "release.rolling_back":
			tl.failed = earliest(tl.failed, t)
		}
	}
	for _, p := range r.GetPhases() {
		if p.GetState() == v1.PhaseState_PHASE_STATE_FAILED && p.GetFinishedUnixNano() != 0 {
			tl.failed = earliest(tl.failed, p.GetFinishedUnixNano())
		}
	}
	switch r.GetState() {
	case v1.ReleaseState_RELEASE_STATE_ROLLING_BACK, v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, v1.ReleaseState_RELEASE_STATE_FAILED:
		tl.failedState = true
	}
	tl.failedState = tl.failedState || tl.failed != 0
	return tl
}

// Compute returns the figures of each app with a release in rels, sorted
// by name, followed by the AllApps row when withAll is set.
func Compute(rels []Release, from, to time.Time, withAll bool) []Figures {
	tls := make([]timeline, 0, len(rels))
	for _, r := range rels {
		tls = append(tls, timelineOf(r))
	}
	// MTTF pairs each failure with its own app's latest earlier success:
	// a binary search in the app's sorted success times.
	successes := map[string][]int64{}
	for _, tl := range tls {
		if tl.succeeded != 0 {
			successes[tl.app] = append(successes[tl.app], tl.succeeded)
		}
	}
	for _, ts := range successes {
		slices.Sort(ts)
	}
	for i := range tls {
		if tls[i].failed == 0 {
			continue
		}
		ts := successes[tls[i].app]
		if n, _ := slices.BinarySearch(ts, tls[i].failed); n > 0 {
			tls[i].prevSuccess = ts[n-1]
		}
	}
	byApp := map[string][]timeline{}
	var apps []string
	for _, tl := range tls {
		if _, ok := byApp[tl.app]; !ok {
			apps = append(apps, tl.app)
		}
		byApp[tl.app] = append(byApp[tl.app], tl)
	}
	slices.Sort(apps)
	out := make([]Figures, 0, len(apps)+1)
	for _, app := range apps {
		out = append(out, figures(app, byApp[app], from, to))
	}
	if withAll {
		out = append(out, figures(AllApps, tls, from, to))
	}
	return out
}

func figures(app string, tls []timeline, from, to time.Time) Figures {
	lo, hi := from.UnixNano(), to.UnixNano()
	in := func(t int64) bool { return t != 0 && t >= lo && t <= hi }
	f := Figures{App: app, DeploymentsPerDay: Undefined, ChangeFailureRatio: Undefined}
	var lead, restore, ack, mttf []time.Duration
	var failures []int64
	for _, tl := range tls {
		if in(tl.succeeded) {
			f.Deployments++
			lead = append(lead, time.Duration(tl.succeeded-tl.submitted))
		}
		if in(tl.ended) && (!tl.aborted || tl.failedState) {
			f.Changes++
			if tl.failedState {
				f.FailedChanges++
			}
		}
		if !in(tl.failed) {
			continue
		}
		failures = append(failures, tl.failed)
		if tl.restored != 0 {
			restore = append(restore, time.Duration(tl.restored-tl.failed))
		}
		if tl.acked != 0 {
			ack = append(ack, time.Duration(max(0, tl.acked-tl.failed)))
		}
		if tl.prevSuccess != 0 {
			mttf = append(mttf, time.Duration(tl.failed-tl.prevSuccess))
		}
	}
	if days := to.Sub(from).Hours() / 24; days > 0 {
		f.DeploymentsPerDay = float64(f.Deployments) / days
	}
	if f.Changes > 0 {
		f.ChangeFailureRatio = float64(f.FailedChanges) / float64(f.Changes)
	}
	f.LeadTimeMedian, f.LeadTimeP90 = Quantile(lead, 0.5), Quantile(lead, 0.9)
	f.Failures, f.Restored, f.Acked = len(failures), len(restore), len(ack)
	f.TimeToRestoreMedian, f.TimeToRestoreMax = Quantile(restore, 0.5), Quantile(restore, 1)
	f.MTTA, f.MTTF = mean(ack), mean(mttf)
	f.MTBF = Undefined
	if len(failures) >= 2 {
		slices.Sort(failures)
		f.MTBF = time.Duration((failures[len(failures)-1] - failures[0]) / int64(len(failures)-1))
	}
	return f
}

// Quantile returns the p-quantile (0 < p <= 1) of ds by the nearest rank,
// or Undefined for none. ds is not modified.
func Quantile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return Undefined
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// The epsilon keeps float error (0.07*100 = 7.000000000000001) from
	// moving the rank up one.
	rank := int(math.Ceil(p*float64(len(s)) - 1e-9))
	return s[min(max(rank, 1), len(s))-1]
}

// mean returns the mean of ds (truncated to the nanosecond), or Undefined.
func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return Undefined
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
