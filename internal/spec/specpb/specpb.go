// Package specpb converts release specs between spec.Release and the
// protocol's rollwavev1.ReleaseSpec. Durations travel as whole
// milliseconds (the *_ms fields): anything finer is truncated. Slices and
// maps are copied, never shared.
package specpb

import (
	"maps"
	"slices"
	"time"

	"github.com/rollwave/rollwave/internal/sattime"
	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ToProto converts r for the wire and the replicated log. A nil r gives nil.
func ToProto(r *spec.Release) *rollwavev1.ReleaseSpec {
	if r == nil {
		return nil
	}
	checks := make([]*rollwavev1.HealthCheck, 0, len(r.Health.Checks))
	for _, c := range r.Health.Checks {
		checks = append(checks, &rollwavev1.HealthCheck{
			Kind:           string(c.Kind),
			Name:           c.Name,
			Url:            c.URL,
			Address:        c.Address,
			Command:        slices.Clone(c.Command),
			ExpectStatus:   int32(c.ExpectStatus),
			BodyMatch:      c.BodyMatch,
			IntervalMs:     ms(c.Interval),
			TimeoutMs:      ms(c.Timeout),
			Method:         c.Method,
			Headers:        maps.Clone(c.Headers),
			Body:           c.Body,
			ExpectStatuses: int32s(c.ExpectStatuses),
			BodyContains:   c.BodyContains,
			GrpcService:    c.GRPCService,
			Tls:            c.TLS,
			TlsServerName:  c.TLSServerName,
			CaFile:         c.CAFile,
		})
	}
	return &rollwavev1.ReleaseSpec{
		Name:    r.Name,
		App:     r.App,
		Version: r.Version,
		Artifact: &rollwavev1.Artifact{
			Url:    r.Artifact.URL,
			Sha256: r.Artifact.SHA256,
		},
		Unit: &rollwavev1.UnitSpec{
			ExecStart:        r.Unit.ExecStart,
			User:             r.Unit.User,
			Environment:      maps.Clone(r.Unit.Environment),
			WorkingDirectory: r.Unit.WorkingDirectory,
			ExecStartPre:     slices.Clone(r.Unit.ExecStartPre),
			Hardening:        slices.Clone(r.Unit.Hardening),
			Restart:          r.Unit.Restart,
		},
		Slots: &rollwavev1.SlotsSpec{
			BluePort:  int32(r.Slots.BluePort),
			GreenPort: int32(r.Slots.GreenPort),
			KeepOld:   string(r.Slots.KeepOld),
		},
		Traffic: &rollwavev1.TrafficSpec{
			Mode:       string(r.Traffic.Mode),
			Listen:     r.Traffic.Listen,
			Command:    slices.Clone(r.Traffic.Command),
			Protocol:   string(r.Traffic.Protocol),
			Steps:      int32s(r.Traffic.Steps),
			StepTimeMs: ms(r.Traffic.StepTime),
			Sticky:     string(r.Traffic.Sticky),
		},
		Target: &rollwavev1.TargetSpec{
			Cells:   slices.Clone(r.Target.Cells),
			Exclude: slices.Clone(r.Target.Exclude),
			Labels:  maps.Clone(r.Target.Labels),
		},
		Phases: &rollwavev1.PhasesSpec{
			Canary:               int32(r.Phases.Canary),
			Growth:               string(r.Phases.Growth),
			Factor:               r.Phases.Factor,
			Step:                 int32(r.Phases.Step),
			MaxSize:              quantityToProto(r.Phases.MaxSize),
			PerCellMax:           int32(r.Phases.PerCellMax),
			ParallelCellsAfter:   int32(r.Phases.ParallelCellsAfter),
			ParallelRegionsAfter: int32(r.Phases.ParallelRegionsAfter),
			DarkMs:               ms(r.Phases.Dark),
			Shadow:               r.Phases.Shadow,
			ShadowSample:         r.Phases.ShadowSample,
			ShadowMethods:        slices.Clone(r.Phases.ShadowMethods),
		},
		Bake: &rollwavev1.BakeSpec{
			FirstMs: ms(r.Bake.First),
			Decay:   r.Bake.Decay,
			MinMs:   ms(r.Bake.Min),
		},
		Health: &rollwavev1.HealthSpec{
			Checks:            checks,
			MinHealthyTimeMs:  ms(r.Health.MinHealthyTime),
			HealthyDeadlineMs: ms(r.Health.HealthyDeadline),
		},
		Gates: &rollwavev1.GatesSpec{
			MaxFailedHosts:     quantityToProto(r.Gates.MaxFailedHosts),
			MaxUnreachable:     quantityToProto(r.Gates.MaxUnreachable),
			MaxCpuPercent:      r.Gates.MaxCPUPercent,
			MaxMemPercent:      r.Gates.MaxMemPercent,
			MaxRestarts:        int32(r.Gates.MaxRestarts),
			Baseline:           string(r.Gates.Baseline),
			BaselineMinSamples: int32(r.Gates.BaselineMinSamples),
			MaxErrorRate:       r.Gates.MaxErrorRate,
			MaxLatencyP99Ms:    r.Gates.MaxLatencyP99.Milliseconds(),
			MinRequests:        int64(r.Gates.MinRequests),
			MetricGates:        metricGatesToProto(r.Gates.Metric),
		},
		Rollback: &rollwavev1.RollbackSpec{
			OnFailure:          string(r.Rollback.OnFailure),
			IsolationTimeoutMs: ms(r.Rollback.IsolationTimeout),
			OnControlPlaneLoss: string(r.Rollback.OnControlPlaneLoss),
			Rehearse:           r.Rollback.Rehearse,
			MaxRollbackTimeMs:  ms(r.Rollback.MaxRollbackTime),
		},
		Approval: &rollwavev1.ApprovalSpec{
			AfterPhases: int32s(r.Approval.AfterPhases),
		},
		Converge: string(r.Converge),
		Hooks:    hooksToProto(r.Hooks),
		PostRollout: &rollwavev1.PostRolloutSpec{
			WatchMs: ms(r.PostRollout.Watch),
			KeepOld: string(r.PostRollout.KeepOld),
		},
		Requires: requiresToProto(r.Requires),
	}
}

// FromProto converts a spec from the wire or the replicated log. Missing
// sub-messages give zero values, not defaults: the result is exactly what
// was sent, so call Validate on specs from untrusted sources. A nil p gives
// nil.
func FromProto(p *rollwavev1.ReleaseSpec) *spec.Release {
	if p == nil {
		return nil
	}
	// The generated getters are nil-safe, so absent sub-messages read as
	// zero values without checks here.
	var checks []spec.Check
	for _, c := range p.GetHealth().GetChecks() {
		checks = append(checks, spec.Check{
			Kind:           spec.CheckKind(c.GetKind()),
			Name:           c.GetName(),
			URL:            c.GetUrl(),
			Address:        c.GetAddress(),
			Command:        slices.Clone(c.GetCommand()),
			ExpectStatus:   int(c.GetExpectStatus()),
			BodyMatch:      c.GetBodyMatch(),
			Interval:       dur(c.GetIntervalMs()),
			Timeout:        dur(c.GetTimeoutMs()),
			Method:         c.GetMethod(),
			Headers:        cloneMap(c.GetHeaders()),
			Body:           c.GetBody(),
			ExpectStatuses: ints(c.GetExpectStatuses()),
			BodyContains:   c.GetBodyContains(),
			GRPCService:    c.GetGrpcService(),
			TLS:            c.GetTls(),
			TLSServerName:  c.GetTlsServerName(),
			CAFile:         c.GetCaFile(),
		})
	}
	return &spec.Release{
		Name:    p.GetName(),
		App:     p.GetApp(),
		Version: p.GetVersion(),
		Artifact: spec.Artifact{
			URL:    p.GetArtifact().GetUrl(),
			SHA256: p.GetArtifact().GetSha256(),
		},
		Unit: spec.Unit{
			ExecStart:        p.GetUnit().GetExecStart(),
			User:             p.GetUnit().GetUser(),
			Environment:      cloneMap(p.GetUnit().GetEnvironment()),
			WorkingDirectory: p.GetUnit().GetWorkingDirectory(),
			ExecStartPre:     slices.Clone(p.GetUnit().GetExecStartPre()),
			Hardening:        slices.Clone(p.GetUnit().GetHardening()),
			Restart:          p.GetUnit().GetRestart(),
		},
		Slots: spec.Slots{
			BluePort:  int(p.GetSlots().GetBluePort()),
			GreenPort: int(p.GetSlots().GetGreenPort()),
			KeepOld:   spec.KeepOld(p.GetSlots().GetKeepOld()),
		},
		Traffic: spec.Traffic{
			Mode:     spec.TrafficMode(p.GetTraffic().GetMode()),
			Listen:   p.GetTraffic().GetListen(),
			Command:  slices.Clone(p.GetTraffic().GetCommand()),
			Protocol: spec.TrafficProtocol(p.GetTraffic().GetProtocol()),
			Steps:    ints(p.GetTraffic().GetSteps()),
			StepTime: dur(p.GetTraffic().GetStepTimeMs()),
			Sticky:   spec.TrafficSticky(p.GetTraffic().GetSticky()),
		},
		Target: spec.Target{
			Cells:   slices.Clone(p.GetTarget().GetCells()),
			Exclude: slices.Clone(p.GetTarget().GetExclude()),
			Labels:  cloneMap(p.GetTarget().GetLabels()),
		},
		Phases: spec.Phases{
			Canary:               int(p.GetPhases().GetCanary()),
			Growth:               spec.Growth(p.GetPhases().GetGrowth()),
			Factor:               p.GetPhases().GetFactor(),
			Step:                 int(p.GetPhases().GetStep()),
			MaxSize:              quantityFromProto(p.GetPhases().GetMaxSize()),
			PerCellMax:           int(p.GetPhases().GetPerCellMax()),
			ParallelCellsAfter:   int(p.GetPhases().GetParallelCellsAfter()),
			ParallelRegionsAfter: int(p.GetPhases().GetParallelRegionsAfter()),
			Dark:                 dur(p.GetPhases().GetDarkMs()),
			Shadow:               p.GetPhases().GetShadow(),
			ShadowSample:         p.GetPhases().GetShadowSample(),
			ShadowMethods:        slices.Clone(p.GetPhases().GetShadowMethods()),
		},
		Bake: spec.Bake{
			First: dur(p.GetBake().GetFirstMs()),
			Decay: p.GetBake().GetDecay(),
			Min:   dur(p.GetBake().GetMinMs()),
		},
		Health: spec.Health{
			Checks:          checks,
			MinHealthyTime:  dur(p.GetHealth().GetMinHealthyTimeMs()),
			HealthyDeadline: dur(p.GetHealth().GetHealthyDeadlineMs()),
		},
		Gates: spec.Gates{
			MaxFailedHosts:     quantityFromProto(p.GetGates().GetMaxFailedHosts()),
			MaxUnreachable:     quantityFromProto(p.GetGates().GetMaxUnreachable()),
			MaxCPUPercent:      p.GetGates().GetMaxCpuPercent(),
			MaxMemPercent:      p.GetGates().GetMaxMemPercent(),
			MaxRestarts:        int(p.GetGates().GetMaxRestarts()),
			Baseline:           spec.Baseline(p.GetGates().GetBaseline()),
			BaselineMinSamples: int(p.GetGates().GetBaselineMinSamples()),
			MaxErrorRate:       p.GetGates().GetMaxErrorRate(),
			MaxLatencyP99:      time.Duration(p.GetGates().GetMaxLatencyP99Ms()) * time.Millisecond,
			MinRequests:        minRequests(p.GetGates().GetMinRequests()),
			Metric:             metricGatesFromProto(p.GetGates().GetMetricGates()),
		},
		Rollback: spec.Rollback{
			OnFailure:          spec.OnFailure(p.GetRollback().GetOnFailure()),
			IsolationTimeout:   dur(p.GetRollback().GetIsolationTimeoutMs()),
			OnControlPlaneLoss: spec.ControlPlaneLoss(p.GetRollback().GetOnControlPlaneLoss()),
			Rehearse:           p.GetRollback().GetRehearse(),
			MaxRollbackTime:    maxRollbackTime(p.GetRollback().GetMaxRollbackTimeMs()),
		},
		Approval: spec.Approval{
			AfterPhases: ints(p.GetApproval().GetAfterPhases()),
		},
		Converge: spec.Converge(p.GetConverge()),
		Hooks:    hooksFromProto(p.GetHooks()),
		PostRollout: spec.PostRollout{
			Watch:   dur(p.GetPostRollout().GetWatchMs()),
			KeepOld: spec.WatchKeepOld(p.GetPostRollout().GetKeepOld()),
		},
		Requires: requiresFromProto(p.GetRequires()),
	}
}

func hooksToProto(hs []spec.Hook) []*rollwavev1.HookSpec {
	var out []*rollwavev1.HookSpec
	for _, h := range hs {
		out = append(out, &rollwavev1.HookSpec{Name: h.Name, Exec: slices.Clone(h.Exec), TimeoutMs: ms(h.Timeout)})
	}
	return out
}

func hooksFromProto(hs []*rollwavev1.HookSpec) []spec.Hook {
	var out []spec.Hook
	for _, h := range hs {
		out = append(out, spec.Hook{Name: h.GetName(), Exec: slices.Clone(h.GetExec()), Timeout: dur(h.GetTimeoutMs())})
	}
	return out
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// dur converts milliseconds, saturating instead of wrapping: a wrapped
// value could land inside the caps Validate checks.
func dur(ms int64) time.Duration { return sattime.Millis(ms) }

func quantityToProto(q spec.Quantity) *rollwavev1.Quantity {
	return &rollwavev1.Quantity{Value: q.Value, Percent: q.Percent}
}

func quantityFromProto(q *rollwavev1.Quantity) spec.Quantity {
	return spec.Quantity{Value: q.GetValue(), Percent: q.GetPercent()}
}

// cloneMap copies m, giving nil for an empty map so that a spec that went
// through the wire compares equal to one parsed from a file.
func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func int32s(in []int) []int32 {
	if len(in) == 0 {
		return nil
	}
	out := make([]int32, len(in))
	for i, v := range in {
		out[i] = int32(v)
	}
	return out
}

func ints(in []int32) []int {
	if len(in) == 0 {
		return nil
	}
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = int(v)
	}
	return out
}

// minRequests reads gates.min_requests; a spec stored before the field
// existed has 0 and gets the default.
func minRequests(n int64) int {
	if n <= 0 {
		return spec.DefaultMinRequests
	}
	return int(n)
}

func metricGatesToProto(gs []spec.MetricGate) []*rollwavev1.MetricGate {
	var out []*rollwavev1.MetricGate
	for _, g := range gs {
		out = append(out, &rollwavev1.MetricGate{
			Kind: string(g.Kind), Name: g.Name, Address: g.Address, Query: g.Query,
			Max: cloneFloat(g.Max), Min: cloneFloat(g.Min), Url: g.URL,
			IntervalMs: ms(g.Interval), TimeoutMs: ms(g.Timeout), Attempts: int32(g.Attempts),
			BearerTokenFile: g.BearerTokenFile, Username: g.Username, PasswordFile: g.PasswordFile, CaFile: g.CAFile,
		})
	}
	return out
}

func metricGatesFromProto(gs []*rollwavev1.MetricGate) []spec.MetricGate {
	var out []spec.MetricGate
	for _, g := range gs {
		out = append(out, spec.MetricGate{
			Kind: spec.MetricGateKind(g.GetKind()), Name: g.GetName(), Address: g.GetAddress(), Query: g.GetQuery(),
			Max: cloneFloat(g.Max), Min: cloneFloat(g.Min), URL: g.GetUrl(),
			Interval: dur(g.GetIntervalMs()), Timeout: dur(g.GetTimeoutMs()), Attempts: int(g.GetAttempts()),
			BearerTokenFile: g.GetBearerTokenFile(), Username: g.GetUsername(), PasswordFile: g.GetPasswordFile(), CAFile: g.GetCaFile(),
		})
	}
	return out
}

func cloneFloat(f *float64) *float64 {
	if f == nil {
		return nil
	}
	v := *f
	return &v
}

// maxRollbackTime reads rollback.max_rollback_time; specs stored before
// the field existed carry 0 and get the default.
func maxRollbackTime(ms int64) time.Duration {
	if ms <= 0 {
		return spec.DefaultMaxRollbackTime
	}
	return dur(ms)
}

func requiresToProto(rs []spec.Requirement) []*rollwavev1.Requirement {
	var out []*rollwavev1.Requirement
	for _, r := range rs {
		out = append(out, &rollwavev1.Requirement{App: r.App, Version: r.Version})
	}
	return out
}

func requiresFromProto(rs []*rollwavev1.Requirement) []spec.Requirement {
	var out []spec.Requirement
	for _, r := range rs {
		out = append(out, spec.Requirement{App: r.GetApp(), Version: r.GetVersion()})
	}
	return out
}
