package spec

import (
	"github.com/hashicorp/hcl/v2"
)

// ParseRelease parses a release spec: HCL native syntax, or JSON when
// filename ends in ".json". The file holds exactly one release "NAME" block.
// Optional fields take the defaults of DefaultRelease; the result is
// validated. On failure the error is a Diagnostics listing every problem.
func ParseRelease(filename string, src []byte) (*Release, error) {
	d := newDecoder(filename)
	body := d.parse(src)
	if body == nil {
		return nil, d.result()
	}
	r := DefaultRelease()
	var found []*hcl.Block
	d.body(body, "", d.start(), []field{{
		name:     "release",
		labels:   []string{"name"},
		repeated: true,
		block: func(d *decoder, b *hcl.Block, _ string) {
			found = append(found, b)
		},
	}})
	switch len(found) {
	case 0:
		if len(d.diags) == 0 {
			d.errorAt(d.start(), "", `missing required block release "NAME" { ... }`)
		}
		return nil, d.result()
	case 1:
	default:
		for _, b := range found[1:] {
			d.errorAt(b.DefRange, "release", "duplicate release block %q; a file holds exactly one release (the first, %q, is at line %d)",
				b.Labels[0], found[0].Labels[0], found[0].DefRange.Start.Line)
		}
	}
	b := found[0]
	r.Name = b.Labels[0]
	d.pos["release"] = b.DefRange
	d.pos["release.name"] = b.LabelRanges[0]
	d.body(b.Body, "release", b.DefRange, releaseFields(r))
	applyDerivedDefaults(r, func(path string) bool { _, ok := d.pos[path]; return ok })
	d.place(r.validate())
	if err := d.result(); err != nil {
		return nil, err
	}
	return r, nil
}

// releaseFields describes the release block's body.
func releaseFields(r *Release) []field {
	return []field{
		attr("app", str(&r.App)),
		attr("version", str(&r.Version)),
		requiredBlock("artifact", sub(
			attr("url", str(&r.Artifact.URL)),
			attr("sha256", str(&r.Artifact.SHA256)),
		)),
		requiredBlock("unit", sub(
			attr("exec_start", str(&r.Unit.ExecStart)),
			attr("user", str(&r.Unit.User)),
			attr("environment", strMap(&r.Unit.Environment)),
			attr("working_directory", str(&r.Unit.WorkingDirectory)),
			attr("exec_start_pre", strList(&r.Unit.ExecStartPre)),
			attr("restart", str(&r.Unit.Restart)),
			attr("hardening", strList(&r.Unit.Hardening)),
		)),
		requiredBlock("slots", sub(
			attr("blue_port", integer(&r.Slots.BluePort)),
			attr("green_port", integer(&r.Slots.GreenPort)),
			attr("keep_old", str((*string)(&r.Slots.KeepOld))),
		)),
		block("traffic", sub(
			attr("mode", str((*string)(&r.Traffic.Mode))),
			attr("listen", str(&r.Traffic.Listen)),
			attr("command", strList(&r.Traffic.Command)),
			attr("protocol", str((*string)(&r.Traffic.Protocol))),
			attr("steps", intList(&r.Traffic.Steps)),
			attr("step_time", duration(&r.Traffic.StepTime)),
			attr("sticky", str((*string)(&r.Traffic.Sticky))),
		)),
		block("target", sub(
			attr("cells", strList(&r.Target.Cells)),
			attr("exclude", strList(&r.Target.Exclude)),
			attr("labels", strMap(&r.Target.Labels)),
		)),
		block("phases", sub(
			attr("canary", integer(&r.Phases.Canary)),
			attr("growth", str((*string)(&r.Phases.Growth))),
			attr("factor", number(&r.Phases.Factor)),
			attr("step", integer(&r.Phases.Step)),
			attr("max_size", quantity(&r.Phases.MaxSize)),
			attr("per_cell_max", integer(&r.Phases.PerCellMax)),
			attr("parallel_cells_after", integer(&r.Phases.ParallelCellsAfter)),
			attr("parallel_regions_after", integer(&r.Phases.ParallelRegionsAfter)),
			attr("dark", duration(&r.Phases.Dark)),
			attr("shadow", boolean(&r.Phases.Shadow)),
			attr("shadow_sample", ratio(&r.Phases.ShadowSample)),
			attr("shadow_methods", strList(&r.Phases.ShadowMethods)),
		)),
		block("bake", sub(
			attr("first", duration(&r.Bake.First)),
			attr("decay", number(&r.Bake.Decay)),
			attr("min", duration(&r.Bake.Min)),
		)),
		requiredBlock("health", sub(
			field{
				name:          "check",
				labels:        []string{"kind"},
				optionalLabel: "name",
				repeated:      true,
				block:         checkBlock(&r.Health.Checks),
			},
			attr("min_healthy_time", duration(&r.Health.MinHealthyTime)),
			attr("healthy_deadline", duration(&r.Health.HealthyDeadline)),
		)),
		block("gates", sub(
			attr("max_failed_hosts", quantity(&r.Gates.MaxFailedHosts)),
			attr("max_unreachable", quantity(&r.Gates.MaxUnreachable)),
			attr("max_cpu_percent", number(&r.Gates.MaxCPUPercent)),
			attr("max_mem_percent", number(&r.Gates.MaxMemPercent)),
			attr("max_restarts", integer(&r.Gates.MaxRestarts)),
			attr("baseline", str((*string)(&r.Gates.Baseline))),
			attr("baseline_min_samples", integer(&r.Gates.BaselineMinSamples)),
			attr("max_error_rate", ratio(&r.Gates.MaxErrorRate)),
			attr("max_latency_p99", duration(&r.Gates.MaxLatencyP99)),
			attr("min_requests", integer(&r.Gates.MinRequests)),
			field{
				name:          "gate",
				labels:        []string{"kind"},
				optionalLabel: "name",
				repeated:      true,
				block:         metricGateBlock(&r.Gates.Metric),
			},
		)),
		block("rollback", sub(
			attr("on_failure", str((*string)(&r.Rollback.OnFailure))),
			attr("isolation_timeout", duration(&r.Rollback.IsolationTimeout)),
			attr("on_control_plane_loss", str((*string)(&r.Rollback.OnControlPlaneLoss))),
			attr("rehearse", boolean(&r.Rollback.Rehearse)),
			attr("max_rollback_time", duration(&r.Rollback.MaxRollbackTime)),
		)),
		block("approval", sub(
			attr("after_phases", intList(&r.Approval.AfterPhases)),
		)),
		attr("converge", str((*string)(&r.Converge))),
		{
			name:     "hook",
			labels:   []string{"name"},
			repeated: true,
			block:    hookBlock(&r.Hooks),
		},
		block("post_rollout", sub(
			attr("watch", duration(&r.PostRollout.Watch)),
			attr("keep_old", str((*string)(&r.PostRollout.KeepOld))),
		)),
		{
			name:     "requires",
			repeated: true,
			block:    requiresBlock(&r.Requires),
		},
	}
}

// sub decodes a nested block whose body holds fields.
func sub(fields ...field) blockFunc {
	return func(d *decoder, b *hcl.Block, path string) {
		d.body(b.Body, path, b.DefRange, fields)
	}
}

// checkBlock decodes one check "KIND" ["NAME"] block, appending it to dst.
// The kind is validated later; the check is kept even when it is unknown so
// that paths stay aligned with the source order.
func checkBlock(dst *[]Check) blockFunc {
	return func(d *decoder, b *hcl.Block, path string) {
		c := defaultCheck(CheckKind(b.Labels[0]))
		d.pos[path+".kind"] = b.LabelRanges[0]
		if len(b.Labels) > 1 {
			c.Name = b.Labels[1]
			d.pos[path+".name"] = b.LabelRanges[1]
		}
		d.body(b.Body, path, b.DefRange, []field{
			attr("name", str(&c.Name)),
			attr("url", str(&c.URL)),
			attr("address", str(&c.Address)),
			attr("command", strList(&c.Command)),
			attr("expect_status", statusOrList(&c.ExpectStatus, &c.ExpectStatuses)),
			attr("body_match", str(&c.BodyMatch)),
			attr("method", str(&c.Method)),
			attr("headers", strMap(&c.Headers)),
			attr("body", str(&c.Body)),
			attr("body_contains", str(&c.BodyContains)),
			attr("grpc_service", str(&c.GRPCService)),
			attr("tls", boolean(&c.TLS)),
			attr("tls_server_name", str(&c.TLSServerName)),
			attr("ca_file", str(&c.CAFile)),
			attr("interval", duration(&c.Interval)),
			attr("timeout", duration(&c.Timeout)),
		})
		*dst = append(*dst, c)
	}
}

// statusOrList decodes expect_status: one status (expect_status = 200) or
// a set of them (expect_status = [200, 204]), whose first element also
// goes to *one so that readers of the single field still see a status.
func statusOrList(one *int, set *[]int) attrFunc {
	return func(d *decoder, expr hcl.Expression, path string) {
		v, ok := d.eval(expr, path)
		if !ok {
			return
		}
		if t := v.Type(); !t.IsTupleType() && !t.IsListType() {
			integer(one)(d, expr, path)
			*set = nil
			return
		}
		intList(set)(d, expr, path)
		*one = 0
		if len(*set) > 0 {
			*one = (*set)[0]
		}
	}
}
