package spec

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// ParseRelease parses a release spec: HCL native syntax, or JSON when
// filename ends in ".json". The file holds exactly one release "NAME" block.
// Optional fields take the defaults of DefaultRelease; the result is
// validated. On failure the error is a Diagnostics listing every problem.
func ParseRelease(filename string, src []byte) (*Release, error) {
	d := speccore.NewDecoder(filename)
	body := d.Parse(src)
	if body == nil {
		return nil, d.Result()
	}
	r := DefaultRelease()
	var found []*hcl.Block
	d.Body(body, "", d.Start(), []speccore.Field{{
		Name:     "release",
		Labels:   []string{"name"},
		Repeated: true,
		Block: func(d *speccore.Decoder, b *hcl.Block, _ string) {
			found = append(found, b)
		},
	}})
	switch len(found) {
	case 0:
		if len(d.Diags) == 0 {
			d.ErrorAt(d.Start(), "", `missing required block release "NAME" { ... }`)
		}
		return nil, d.Result()
	case 1:
	default:
		for _, b := range found[1:] {
			d.ErrorAt(b.DefRange, "release", "duplicate release block %q; a file holds exactly one release (the first, %q, is at line %d)",
				b.Labels[0], found[0].Labels[0], found[0].DefRange.Start.Line)
		}
	}
	b := found[0]
	r.Name = b.Labels[0]
	d.Pos["release"] = b.DefRange
	d.Pos["release.name"] = b.LabelRanges[0]
	d.Body(b.Body, "release", b.DefRange, releaseFields(r))
	applyDerivedDefaults(r, func(path string) bool { _, ok := d.Pos[path]; return ok })
	d.Place(r.validate())
	if err := d.Result(); err != nil {
		return nil, err
	}
	return r, nil
}

// releaseFields describes the release block's body.
func releaseFields(r *Release) []speccore.Field {
	return []speccore.Field{
		speccore.Attr("app", speccore.Str(&r.App)),
		speccore.Attr("version", speccore.Str(&r.Version)),
		speccore.RequiredBlock("artifact", speccore.Sub(
			speccore.Attr("url", speccore.Str(&r.Artifact.URL)),
			speccore.Attr("sha256", speccore.Str(&r.Artifact.SHA256)),
		)),
		speccore.RequiredBlock("unit", speccore.Sub(
			speccore.Attr("exec_start", speccore.Str(&r.Unit.ExecStart)),
			speccore.Attr("user", speccore.Str(&r.Unit.User)),
			speccore.Attr("environment", speccore.StrMap(&r.Unit.Environment)),
			speccore.Attr("working_directory", speccore.Str(&r.Unit.WorkingDirectory)),
			speccore.Attr("exec_start_pre", speccore.StrList(&r.Unit.ExecStartPre)),
			speccore.Attr("restart", speccore.Str(&r.Unit.Restart)),
			speccore.Attr("hardening", speccore.StrList(&r.Unit.Hardening)),
		)),
		speccore.RequiredBlock("slots", speccore.Sub(
			speccore.Attr("blue_port", speccore.Integer(&r.Slots.BluePort)),
			speccore.Attr("green_port", speccore.Integer(&r.Slots.GreenPort)),
			speccore.Attr("keep_old", speccore.Str((*string)(&r.Slots.KeepOld))),
		)),
		speccore.Block("traffic", speccore.Sub(
			speccore.Attr("mode", speccore.Str((*string)(&r.Traffic.Mode))),
			speccore.Attr("listen", speccore.Str(&r.Traffic.Listen)),
			speccore.Attr("command", speccore.StrList(&r.Traffic.Command)),
			speccore.Attr("protocol", speccore.Str((*string)(&r.Traffic.Protocol))),
			speccore.Attr("steps", speccore.IntList(&r.Traffic.Steps)),
			speccore.Attr("step_time", speccore.Duration(&r.Traffic.StepTime)),
			speccore.Attr("sticky", speccore.Str((*string)(&r.Traffic.Sticky))),
		)),
		speccore.Block("target", speccore.Sub(
			speccore.Attr("cells", speccore.StrList(&r.Target.Cells)),
			speccore.Attr("exclude", speccore.StrList(&r.Target.Exclude)),
			speccore.Attr("labels", speccore.StrMap(&r.Target.Labels)),
		)),
		speccore.Block("phases", speccore.Sub(
			speccore.Attr("canary", speccore.Integer(&r.Phases.Canary)),
			speccore.Attr("growth", speccore.Str((*string)(&r.Phases.Growth))),
			speccore.Attr("factor", speccore.Number(&r.Phases.Factor)),
			speccore.Attr("step", speccore.Integer(&r.Phases.Step)),
			speccore.Attr("max_size", speccore.QuantityValue(&r.Phases.MaxSize)),
			speccore.Attr("per_cell_max", speccore.Integer(&r.Phases.PerCellMax)),
			speccore.Attr("parallel_cells_after", speccore.Integer(&r.Phases.ParallelCellsAfter)),
			speccore.Attr("parallel_regions_after", speccore.Integer(&r.Phases.ParallelRegionsAfter)),
			speccore.Attr("dark", speccore.Duration(&r.Phases.Dark)),
			speccore.Attr("shadow", speccore.Boolean(&r.Phases.Shadow)),
			speccore.Attr("shadow_sample", speccore.Ratio(&r.Phases.ShadowSample)),
			speccore.Attr("shadow_methods", speccore.StrList(&r.Phases.ShadowMethods)),
		)),
		speccore.Block("bake", speccore.Sub(
			speccore.Attr("first", speccore.Duration(&r.Bake.First)),
			speccore.Attr("decay", speccore.Number(&r.Bake.Decay)),
			speccore.Attr("min", speccore.Duration(&r.Bake.Min)),
		)),
		speccore.RequiredBlock("health", speccore.Sub(
			speccore.Field{
				Name:          "check",
				Labels:        []string{"kind"},
				OptionalLabel: "name",
				Repeated:      true,
				Block:         checkBlock(&r.Health.Checks),
			},
			speccore.Attr("min_healthy_time", speccore.Duration(&r.Health.MinHealthyTime)),
			speccore.Attr("healthy_deadline", speccore.Duration(&r.Health.HealthyDeadline)),
		)),
		speccore.Block("gates", speccore.Sub(
			speccore.Attr("max_failed_hosts", speccore.QuantityValue(&r.Gates.MaxFailedHosts)),
			speccore.Attr("max_unreachable", speccore.QuantityValue(&r.Gates.MaxUnreachable)),
			speccore.Attr("max_cpu_percent", speccore.Number(&r.Gates.MaxCPUPercent)),
			speccore.Attr("max_mem_percent", speccore.Number(&r.Gates.MaxMemPercent)),
			speccore.Attr("max_restarts", speccore.Integer(&r.Gates.MaxRestarts)),
			speccore.Attr("baseline", speccore.Str((*string)(&r.Gates.Baseline))),
			speccore.Attr("baseline_min_samples", speccore.Integer(&r.Gates.BaselineMinSamples)),
			speccore.Attr("max_error_rate", speccore.Ratio(&r.Gates.MaxErrorRate)),
			speccore.Attr("max_latency_p99", speccore.Duration(&r.Gates.MaxLatencyP99)),
			speccore.Attr("min_requests", speccore.Integer(&r.Gates.MinRequests)),
			speccore.Field{
				Name:          "gate",
				Labels:        []string{"kind"},
				OptionalLabel: "name",
				Repeated:      true,
				Block:         metricGateBlock(&r.Gates.Metric),
			},
		)),
		speccore.Block("rollback", speccore.Sub(
			speccore.Attr("on_failure", speccore.Str((*string)(&r.Rollback.OnFailure))),
			speccore.Attr("isolation_timeout", speccore.Duration(&r.Rollback.IsolationTimeout)),
			speccore.Attr("on_control_plane_loss", speccore.Str((*string)(&r.Rollback.OnControlPlaneLoss))),
			speccore.Attr("rehearse", speccore.Boolean(&r.Rollback.Rehearse)),
			speccore.Attr("max_rollback_time", speccore.Duration(&r.Rollback.MaxRollbackTime)),
		)),
		speccore.Block("approval", speccore.Sub(
			speccore.Attr("after_phases", speccore.IntList(&r.Approval.AfterPhases)),
		)),
		speccore.Attr("converge", speccore.Str((*string)(&r.Converge))),
		{
			Name:     "hook",
			Labels:   []string{"name"},
			Repeated: true,
			Block:    speccore.HookBlock(&r.Hooks),
		},
		speccore.Block("post_rollout", speccore.Sub(
			speccore.Attr("watch", speccore.Duration(&r.PostRollout.Watch)),
			speccore.Attr("keep_old", speccore.Str((*string)(&r.PostRollout.KeepOld))),
		)),
		{
			Name:     "requires",
			Repeated: true,
			Block:    requiresBlock(&r.Requires),
		},
	}
}

// checkBlock decodes one check "KIND" ["NAME"] block, appending it to dst.
// The kind is validated later; the check is kept even when it is unknown so
// that paths stay aligned with the source order.
func checkBlock(dst *[]Check) speccore.BlockFunc {
	return func(d *speccore.Decoder, b *hcl.Block, path string) {
		c := defaultCheck(CheckKind(b.Labels[0]))
		d.Pos[path+".kind"] = b.LabelRanges[0]
		if len(b.Labels) > 1 {
			c.Name = b.Labels[1]
			d.Pos[path+".name"] = b.LabelRanges[1]
		}
		d.Body(b.Body, path, b.DefRange, []speccore.Field{
			speccore.Attr("name", speccore.Str(&c.Name)),
			speccore.Attr("url", speccore.Str(&c.URL)),
			speccore.Attr("address", speccore.Str(&c.Address)),
			speccore.Attr("command", speccore.StrList(&c.Command)),
			speccore.Attr("expect_status", statusOrList(&c.ExpectStatus, &c.ExpectStatuses)),
			speccore.Attr("body_match", speccore.Str(&c.BodyMatch)),
			speccore.Attr("method", speccore.Str(&c.Method)),
			speccore.Attr("headers", speccore.StrMap(&c.Headers)),
			speccore.Attr("body", speccore.Str(&c.Body)),
			speccore.Attr("body_contains", speccore.Str(&c.BodyContains)),
			speccore.Attr("grpc_service", speccore.Str(&c.GRPCService)),
			speccore.Attr("tls", speccore.Boolean(&c.TLS)),
			speccore.Attr("tls_server_name", speccore.Str(&c.TLSServerName)),
			speccore.Attr("ca_file", speccore.Str(&c.CAFile)),
			speccore.Attr("interval", speccore.Duration(&c.Interval)),
			speccore.Attr("timeout", speccore.Duration(&c.Timeout)),
		})
		*dst = append(*dst, c)
	}
}

// statusOrList decodes expect_status: one status (expect_status = 200) or
// a set of them (expect_status = [200, 204]), whose first element also
// goes to *one so that readers of the single field still see a status.
func statusOrList(one *int, set *[]int) speccore.AttrFunc {
	return func(d *speccore.Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		if t := v.Type(); !t.IsTupleType() && !t.IsListType() {
			speccore.Integer(one)(d, expr, path)
			*set = nil
			return
		}
		speccore.IntList(set)(d, expr, path)
		*one = 0
		if len(*set) > 0 {
			*one = (*set)[0]
		}
	}
}
