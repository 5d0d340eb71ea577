package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/report"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// DefaultReportWindow is the window of `rollwave report` without -since
// and of the rollwave_delivery_* metrics.
const DefaultReportWindow = 30 * 24 * time.Hour

// deliveryFigures computes internal/report's figures from this server's
// replica (followers answer from theirs). It copies from each stored
// release only what the figures read, so a scan costs no clone of specs
// or sources.
func (s *Server) deliveryFigures(app string, from, to time.Time, withAll bool) []report.Figures {
	var rels []report.Release
	s.fsm.State().EachReleaseHistory(app, report.Kinds, func(r *rollwavev1.Release, evs []*rollwavev1.Event) bool {
		in := report.Release{Release: &rollwavev1.Release{
			Id: r.GetId(), Spec: &rollwavev1.ReleaseSpec{App: r.GetSpec().GetApp()}, State: r.GetState(),
			CreatedUnixNano: r.GetCreatedUnixNano(), AckedUnixNano: r.GetAckedUnixNano(),
		}}
		for _, p := range r.GetPhases() {
			in.Release.Phases = append(in.Release.Phases, &rollwavev1.Phase{Index: p.GetIndex(), State: p.GetState(), FinishedUnixNano: p.GetFinishedUnixNano()})
		}
		for _, e := range evs {
			in.Events = append(in.Events, &rollwavev1.Event{Kind: e.GetKind(), TimeUnixNano: e.GetTimeUnixNano()})
		}
		rels = append(rels, in)
		return true
	})
	return report.Compute(rels, from, to, withAll)
}

// Report answers from the local replica: one call, no event paging.
func (o *operatorService) Report(ctx context.Context, req *rollwavev1.ReportRequest) (*rollwavev1.ReportResponse, error) {
	now := time.Now()
	from := now.Add(-DefaultReportWindow)
	if since := req.GetSinceUnixNano(); since != 0 {
		if since < 0 || since >= now.UnixNano() {
			return nil, errorf(raftfsm.ErrInvalid, "report: since (%d) must be a time in the past, as Unix nanoseconds (0 for the last %s)",
				since, DefaultReportWindow)
		}
		from = time.Unix(0, since)
	}
	app := req.GetApp()
	if app != "" && o.s.fsm.State().App(app) == nil {
		return nil, errorf(raftfsm.ErrNotFound, "report: no app named %q has a release; see 'rollwave release list'", app)
	}
	resp := &rollwavev1.ReportResponse{SinceUnixNano: from.UnixNano(), UntilUnixNano: now.UnixNano()}
	for _, f := range o.s.deliveryFigures(app, from, now, app == "") {
		resp.Apps = append(resp.Apps, appReportOf(f))
	}
	return resp, nil
}

// appReportOf carries Figures over the wire; Undefined stays -1.
func appReportOf(f report.Figures) *rollwavev1.AppReport {
	ms := func(d time.Duration) int64 {
		if d == report.Undefined {
			return report.Undefined
		}
		return d.Milliseconds()
	}
	return &rollwavev1.AppReport{
		App: f.App, Deployments: int32(f.Deployments), DeploymentsPerDay: f.DeploymentsPerDay,
		LeadTimeMedianMs: ms(f.LeadTimeMedian), LeadTimeP90Ms: ms(f.LeadTimeP90),
		Changes: int32(f.Changes), FailedChanges: int32(f.FailedChanges), ChangeFailureRatio: f.ChangeFailureRatio,
		Failures: int32(f.Failures), TimeToRestoreMedianMs: ms(f.TimeToRestoreMedian), TimeToRestoreMaxMs: ms(f.TimeToRestoreMax),
		Restored: int32(f.Restored), MttaMs: ms(f.MTTA), Acked: int32(f.Acked), MtbfMs: ms(f.MTBF), MttfMs: ms(f.MTTF),
	}
}

// AckRelease records the acknowledgement of a failed release's alert;
// the FSM refuses a release that did not fail or was acknowledged already.
func (o *operatorService) AckRelease(ctx context.Context, req *rollwavev1.ReleaseActionRequest) (*rollwavev1.ReleaseActionResponse, error) {
	return o.runAction(ctx, req, releaseAction{"ack", func(s *Server, r *rollwavev1.Release, req *rollwavev1.ReleaseActionRequest) error {
		if req.GetActor() == "" {
			return errorf(raftfsm.ErrInvalid, "ack of release %q needs an actor (the CLI sends your user name; with ACLs, the token's name)", r.GetId())
		}
		return s.applyErr(raftfsm.AckRelease, &rollwavev1.AckReleaseCommand{
			TimeUnixNano: time.Now().UnixNano(), ReleaseId: r.GetId(), Actor: req.GetActor(), Reason: req.GetReason(),
		})
	}}, rollwavev1.OperatorServiceClient.AckRelease)
}

// deliveryCacheFor bounds the cost of the rollwave_delivery_* metrics:
// they are computed at most this often, whatever the scrape rate.
const deliveryCacheFor = 60 * time.Second

var (
	descDeployPerDay = prometheus.NewDesc("rollwave_delivery_deployments_per_day",
		"Releases that succeeded per day over the last 30 days, by app.", []string{"app"}, nil)
	descLeadTime = prometheus.NewDesc("rollwave_delivery_lead_time_seconds",
		"Submit to succeeded of releases that succeeded in the last 30 days (nearest-rank quantiles 0.5 and 0.9), by app.", []string{"app", "quantile"}, nil)
	descChangeFailure = prometheus.NewDesc("rollwave_delivery_change_failure_ratio",
		"Releases that failed (rolled back, failed, or a failed phase) over releases that finished in the last 30 days, by app.", []string{"app"}, nil)
	descTimeToRestore = prometheus.NewDesc("rollwave_delivery_time_to_restore_seconds",
		"Median time from a failure in the last 30 days to every host back on the previous version, by app.", []string{"app"}, nil)
)

// deliveryCollector exports the report's figures per app over the last
// DefaultReportWindow; an undefined figure (no data) has no series.
type deliveryCollector struct {
	s *Server

	mu   sync.Mutex
	at   time.Time
	figs []report.Figures
}

func (c *deliveryCollector) Describe(chan<- *prometheus.Desc) {}

func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := time.Now()
	if c.at.IsZero() || now.Sub(c.at) >= deliveryCacheFor {
		c.figs, c.at = c.s.deliveryFigures("", now.Add(-DefaultReportWindow), now, false), now
	}
	figs := c.figs
	c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, f := range figs {
		gauge(descDeployPerDay, f.DeploymentsPerDay, f.App)
		if f.LeadTimeMedian != report.Undefined {
			gauge(descLeadTime, f.LeadTimeMedian.Seconds(), f.App, "0.5")
			gauge(descLeadTime, f.LeadTimeP90.Seconds(), f.App, "0.9")
		}
		if f.ChangeFailureRatio != report.Undefined {
			gauge(descChangeFailure, f.ChangeFailureRatio, f.App)
		}
		if f.TimeToRestoreMedian != report.Undefined {
			gauge(descTimeToRestore, f.TimeToRestoreMedian.Seconds(), f.App)
		}
	}
}
