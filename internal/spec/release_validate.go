package spec

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

var (
	// nameRE covers release names and versions: they appear in paths and
	// audit logs, so no spaces, slashes or control characters.
	nameRE = speccore.BoundedName(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`, 128)
	// appRE: the app appears in systemd unit names and directories.
	appRE = speccore.BoundedName(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`, 63)
	// envKeyRE: an environment variable name.
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// restartValues are systemd's Restart= settings.
var restartValues = []string{"no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"}

// Validate checks r as ParseRelease does, for specs that did not come
// from a file (the API, tests). It returns a Diagnostics without positions.
func (r *Release) Validate() error {
	return r.validate().Diagnostics().Err()
}

func (r *Release) validate() speccore.Problems {
	var ps speccore.Problems
	if !nameRE.MatchString(r.Name) {
		ps.Add("release.name", "release name must be 1-128 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit, got %q", r.Name)
	}
	if r.App == "" {
		ps.Missing("release", "app")
	} else if !appRE.MatchString(r.App) {
		ps.Add("release.app", "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (it names systemd units and directories), got %q", r.App)
	}
	if r.Version == "" {
		ps.Missing("release", "version")
	} else if !nameRE.MatchString(r.Version) {
		ps.Add("release.version", "must be 1-128 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit, got %q", r.Version)
	}
	r.Artifact.validate(&ps)
	r.Unit.validate(&ps)
	r.Slots.validate(&ps)
	r.Traffic.validate(&ps, r.Slots)
	r.Target.validate(&ps)
	r.Phases.validate(&ps)
	r.Phases.validateDark(&ps, r.Traffic, r.Slots)
	r.Bake.validate(&ps)
	r.Health.validate(&ps)
	r.Gates.validate(&ps)
	r.Rollback.validate(&ps)
	r.Approval.validate(&ps)
	speccore.ValidateHooks(&ps, r.Hooks)
	r.PostRollout.validate(&ps, r.Slots)
	validateRequires(&ps, r.App, r.Requires)
	if r.Converge != "" { // empty: a spec stored before the field existed; read as manual
		speccore.CheckEnum(&ps, "release.converge", string(r.Converge), string(ConvergeManual), string(ConvergeAuto))
	}
	return ps
}

func (a Artifact) validate(ps *speccore.Problems) {
	const p = "release.artifact"
	if a.URL == "" {
		ps.Missing(p, "url")
	} else if msg := speccore.CheckTemplate(a.URL, speccore.ArtifactPlaceholders); msg != "" {
		ps.Add(p+".url", "%s", msg)
	} else if err := speccore.CheckArtifactURL(speccore.Expand(a.URL, speccore.SampleVars)); err != nil {
		// The agent runs the same check (policy.artifact_prefixes).
		ps.Add(p+".url", "%s", strings.TrimPrefix(err.Error(), speccore.ErrArtifactURL.Error()+": "))
	}
	if a.SHA256 == "" {
		ps.Missing(p, "sha256")
	} else if _, err := hex.DecodeString(a.SHA256); err != nil || len(a.SHA256) != 64 {
		ps.Add(p+".sha256", "must be 64 hexadecimal characters, got %q (%d characters)", a.SHA256, len(a.SHA256))
	}
}

// checkURL returns why u is not an absolute URL with one of schemes, or "".
func checkURL(u string, schemes ...string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return fmt.Sprintf("expected a URL, got %q: %v", u, err)
	}
	ok := false
	for _, s := range schemes {
		if parsed.Scheme == s {
			ok = true
		}
	}
	switch {
	case !ok:
		return fmt.Sprintf("URL scheme must be one of %s, got %q", strings.Join(schemes, ", "), u)
	case parsed.Scheme == "file" && parsed.Path == "":
		return fmt.Sprintf("a file URL needs an absolute path such as file:///srv/app.tar.gz, got %q", u)
	case parsed.Scheme != "file" && parsed.Host == "":
		return fmt.Sprintf("URL needs a host, got %q", u)
	}
	return ""
}

// unitString checks a string rendered into a systemd unit: placeholders,
// and no control characters (a newline would inject unit directives).
func unitString(ps *speccore.Problems, p, s string) bool {
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		ps.Add(p, "must not contain control characters such as newlines, got %q", s)
		return false
	}
	if msg := speccore.CheckTemplate(s, speccore.Placeholders); msg != "" {
		ps.Add(p, "%s", msg)
		return false
	}
	return true
}

func (u Unit) validate(ps *speccore.Problems) {
	const p = "release.unit"
	if strings.TrimSpace(u.ExecStart) == "" {
		ps.Missing(p, "exec_start")
	} else {
		execCommand(ps, p+".exec_start", u.ExecStart)
	}
	if err := speccore.CheckUnitUser(u.User); err != nil {
		ps.Add(p+".user", "%v", err)
	}
	for _, k := range speccore.SortedKeys(u.Environment) {
		v := u.Environment[k]
		kp := p + ".environment." + k
		if !envKeyRE.MatchString(k) {
			ps.Add(kp, "environment variable name must be letters, digits and '_', not starting with a digit, got %q", k)
		}
		unitString(ps, kp, v)
	}
	if u.WorkingDirectory != "" && unitString(ps, p+".working_directory", u.WorkingDirectory) &&
		!strings.HasPrefix(speccore.Expand(u.WorkingDirectory, speccore.SampleVars), "/") {
		ps.Add(p+".working_directory", "must be an absolute path or start with {{slot_dir}}, got %q", u.WorkingDirectory)
	}
	for i, c := range u.ExecStartPre {
		if strings.TrimSpace(c) == "" {
			ps.Add(speccore.Index(p+".exec_start_pre", i), "must not be empty")
			continue
		}
		execCommand(ps, speccore.Index(p+".exec_start_pre", i), c)
	}
	speccore.CheckEnum(ps, p+".restart", u.Restart, restartValues...)
	for i, h := range u.Hardening {
		if err := speccore.CheckHardeningLine(h); err != nil {
			ps.Add(speccore.Index(p+".hardening", i), "%v", err)
			continue
		}
		unitString(ps, speccore.Index(p+".hardening", i), h)
	}
}

// execCommand checks a command line rendered into an Exec*= setting:
// unitString's checks, then CheckExecCommand (no systemd command prefix).
func execCommand(ps *speccore.Problems, p, s string) {
	if !unitString(ps, p, s) {
		return
	}
	if err := speccore.CheckExecCommand(s); err != nil {
		ps.Add(p, "%v", err)
	}
}

func (s Slots) validate(ps *speccore.Problems) {
	const p = "release.slots"
	if s.BluePort == 0 {
		ps.Missing(p, "blue_port")
	} else if s.BluePort < 1 || s.BluePort > 65535 {
		ps.Add(p+".blue_port", "must be a port from 1 to 65535, got %d", s.BluePort)
	}
	if s.GreenPort == 0 {
		ps.Missing(p, "green_port")
	} else if s.GreenPort < 1 || s.GreenPort > 65535 {
		ps.Add(p+".green_port", "must be a port from 1 to 65535, got %d", s.GreenPort)
	}
	if s.BluePort != 0 && s.BluePort == s.GreenPort {
		ps.Add(p+".green_port", "must differ from blue_port, got %d for both", s.GreenPort)
	}
	speccore.CheckEnum(ps, p+".keep_old", string(s.KeepOld), string(KeepHot), string(KeepCold))
}

func (t Traffic) validate(ps *speccore.Problems, s Slots) {
	const p = "release.traffic"
	speccore.CheckEnum(ps, p+".mode", string(t.Mode), string(TrafficProxy), string(TrafficExec), string(TrafficNone))
	switch t.Mode {
	case TrafficProxy:
		if t.Listen == "" {
			ps.Add(p+".listen", `is required when mode is "proxy"; expected host:port such as ":8080"`)
		} else if msg := speccore.CheckHostPort(t.Listen, 1); msg != "" {
			ps.Add(p+".listen", "%s", msg)
		} else if _, port := speccore.SplitPort(t.Listen); port == s.BluePort || port == s.GreenPort {
			ps.Add(p+".listen", "port %d is a slot's port; the proxy needs its own port", port)
		}
	case TrafficExec:
		if len(t.Command) == 0 {
			ps.Add(p+".command", `is required when mode is "exec"; expected a list such as ["/usr/local/bin/lb-switch", "{{port}}"]`)
		}
	}
	if t.Protocol != "" {
		speccore.CheckEnum(ps, p+".protocol", string(t.Protocol), string(ProtocolTCP), string(ProtocolHTTP))
		if t.Mode != TrafficProxy {
			ps.Add(p+".protocol", `applies to mode "proxy" only (mode is %q); remove it`, t.Mode)
		}
	}
	t.validateSteps(ps, s)
	for i, c := range t.Command {
		if msg := speccore.CheckTemplate(c, trafficPlaceholders); msg != "" {
			ps.Add(speccore.Index(p+".command", i), "%s", msg)
		}
	}
}

// trafficPlaceholders are what traffic.command may use: the unit's
// placeholders plus the weighted step's own.
var trafficPlaceholders = append(slices.Clone(speccore.Placeholders), "weight", "old_slot", "old_port")

// validateSteps checks traffic.steps, step_time and sticky.
func (t Traffic) validateSteps(ps *speccore.Problems, s Slots) {
	const p = "release.traffic"
	if len(t.Steps) == 0 {
		if t.StepTime != 0 {
			ps.Add(p+".step_time", "applies only with traffic.steps; remove it or add steps")
		}
		if t.Sticky != "" {
			ps.Add(p+".sticky", "applies only with traffic.steps; remove it or add steps")
		}
		return
	}
	if t.Mode != TrafficProxy && t.Mode != TrafficExec {
		ps.Add(p+".steps", `need mode "proxy" or "exec" (mode is %q)`, t.Mode)
	}
	if len(t.Steps) > MaxTrafficSteps {
		ps.Add(p+".steps", "at most %d steps, got %d", MaxTrafficSteps, len(t.Steps))
	}
	prev := 0
	for i, w := range t.Steps {
		switch {
		case w < 1 || w > 100:
			ps.Add(speccore.Index(p+".steps", i), "must be a percentage from 1 to 100, got %d", w)
		case w <= prev:
			ps.Add(speccore.Index(p+".steps", i), "must be above the step before (%d), got %d: steps only go up", prev, w)
		}
		prev = max(prev, w)
	}
	if last := t.Steps[len(t.Steps)-1]; last != 100 {
		ps.Add(p+".steps", "the last step must be 100 (all traffic on the new version), got %d", last)
	}
	speccore.Within(ps, p+".step_time", t.StepTime, MaxTrafficStepTime)
	if t.Sticky != "" {
		speccore.CheckEnum(ps, p+".sticky", string(t.Sticky), string(StickyClientIP), string(StickyCookie))
		if t.Sticky == StickyCookie && (t.Mode != TrafficProxy || t.Protocol != ProtocolHTTP) {
			ps.Add(p+".sticky", `"cookie" needs mode "proxy" with protocol "http"; use "client_ip" for tcp`)
		}
		if t.Mode == TrafficExec {
			ps.Add(p+".sticky", `applies to mode "proxy" only: an external load balancer keeps its own stickiness`)
		}
	}
	if s.KeepOld == KeepCold {
		ps.Add("release.slots.keep_old", `must be "hot" with traffic.steps: the old slot takes the rest of the traffic during the steps`)
	}
}

func (t Target) validate(ps *speccore.Problems) {
	const p = "release.target"
	if len(t.Cells) == 0 {
		ps.Add(p+".cells", `must list at least one glob; use ["*"] for every cell`)
	}
	globs := func(name string, list []string) {
		for i, g := range list {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				ps.Add(speccore.Index(p+"."+name, i), "expected a glob such as \"eu-*\", got %q", g)
			}
		}
	}
	globs("cells", t.Cells)
	globs("exclude", t.Exclude)
	for _, k := range speccore.SortedKeys(t.Labels) {
		if k == "" {
			ps.Add(p+".labels", "label names must not be empty")
		}
	}
}

func (ph Phases) validate(ps *speccore.Problems) {
	const p = "release.phases"
	if ph.Canary < 1 {
		ps.Add(p+".canary", "must be at least 1, got %d", ph.Canary)
	}
	speccore.CheckEnum(ps, p+".growth", string(ph.Growth), string(GrowthGeometric), string(GrowthLinear))
	switch ph.Growth {
	case GrowthGeometric:
		if !(ph.Factor > 1) || math.IsInf(ph.Factor, 0) {
			ps.Add(p+".factor", "must be greater than 1 for geometric growth, got %s", formatFloat(ph.Factor))
		}
	case GrowthLinear:
		if ph.Step < 1 {
			ps.Add(p+".step", "must be at least 1 for linear growth, got %d", ph.Step)
		}
	}
	checkQuantity(ps, p+".max_size", ph.MaxSize)
	if ph.PerCellMax < 0 {
		ps.Add(p+".per_cell_max", "must be at least 0 (0 means no cap), got %d", ph.PerCellMax)
	}
	if ph.ParallelCellsAfter < 0 {
		ps.Add(p+".parallel_cells_after", "must be at least 0 (0 means never), got %d", ph.ParallelCellsAfter)
	}
	if ph.ParallelRegionsAfter < 0 {
		ps.Add(p+".parallel_regions_after", "must be at least 0 (0 means never), got %d", ph.ParallelRegionsAfter)
	}
}

// validateDark checks phases.dark and the shadow fields against the
// traffic they need.
func (ph Phases) validateDark(ps *speccore.Problems, t Traffic, s Slots) {
	const p = "release.phases"
	if ph.Dark < 0 {
		ps.Add(p+".dark", "must not be negative, got %s", ph.Dark)
	}
	speccore.AtMost(ps, p+".dark", ph.Dark, MaxDark)
	if ph.Dark > 0 {
		if t.Mode != TrafficProxy && t.Mode != TrafficExec {
			ps.Add(p+".dark", `needs traffic.mode "proxy" or "exec" (mode is %q): with no switch rollwave cannot keep user traffic off the new slot`, t.Mode)
		}
		if s.KeepOld == KeepCold {
			ps.Add("release.slots.keep_old", `must be "hot" with phases.dark: the old slot serves every user request during the dark phase`)
		}
	}
	if !ph.Shadow {
		if ph.ShadowSample != 0 {
			ps.Add(p+".shadow_sample", "applies only with shadow = true; remove it or set shadow")
		}
		if len(ph.ShadowMethods) > 0 {
			ps.Add(p+".shadow_methods", "applies only with shadow = true; remove it or set shadow")
		}
		return
	}
	if ph.Dark <= 0 {
		ps.Add(p+".shadow", `needs phases.dark (say dark = "2m"): requests are mirrored during the dark phase`)
	}
	if t.Mode != TrafficProxy || t.Protocol != ProtocolHTTP {
		ps.Add(p+".shadow", `needs traffic.mode "proxy" with protocol "http" (mode %q, protocol %q): only the HTTP proxy can mirror requests`, t.Mode, orDefault(string(t.Protocol), string(ProtocolTCP)))
	}
	if !(ph.ShadowSample > 0 && ph.ShadowSample <= 1) {
		ps.Add(p+".shadow_sample", `must be a share above 0%% and at most 100%% (say "10%%"), got %s`, formatFloat(ph.ShadowSample))
	}
	if len(ph.ShadowMethods) == 0 {
		ps.Add(p+".shadow_methods", `must list at least one method, such as ["GET", "HEAD"]`)
	}
	for i, m := range ph.ShadowMethods {
		if !slices.Contains(shadowMethods, m) {
			ps.Add(speccore.Index(p+".shadow_methods", i), "must be one of %s (upper case), got %q", strings.Join(shadowMethods, ", "), m)
		}
		if slices.Index(ph.ShadowMethods, m) < i {
			ps.Add(speccore.Index(p+".shadow_methods", i), "%q is listed twice", m)
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkQuantity reports a negative or fractional count or a percentage
// outside 0-100.
func checkQuantity(ps *speccore.Problems, p string, q speccore.Quantity) {
	switch {
	case math.IsNaN(q.Value) || math.IsInf(q.Value, 0):
		ps.Add(p, "expected a count or a percentage, got %s", q)
	case q.Percent && (q.Value < 0 || q.Value > 100):
		ps.Add(p, "a percentage must be from 0%% to 100%%, got %s", q)
	case !q.Percent && q.Value < 0:
		ps.Add(p, "a count must be at least 0, got %s", q)
	case !q.Percent && q.Value != math.Trunc(q.Value):
		ps.Add(p, `a count must be a whole number, got %s; write a percentage as "%s%%"`, q, q)
	}
}

func (b Bake) validate(ps *speccore.Problems) {
	const p = "release.bake"
	speccore.Within(ps, p+".first", b.First, speccore.MaxBakeDuration)
	speccore.Within(ps, p+".min", b.Min, speccore.MaxBakeDuration)
	if !(b.Decay > 0 && b.Decay <= 1) {
		ps.Add(p+".decay", "must be greater than 0 and at most 1, got %s", formatFloat(b.Decay))
	}
	if b.Min > 0 && b.First > 0 && b.Min > b.First {
		ps.Add(p+".min", "must not exceed first (%s), got %s", b.First, b.Min)
	}
}

func (g Gates) validate(ps *speccore.Problems) {
	const p = "release.gates"
	checkQuantity(ps, p+".max_failed_hosts", g.MaxFailedHosts)
	checkQuantity(ps, p+".max_unreachable", g.MaxUnreachable)
	percent := func(name string, v float64) {
		if !(v >= 0 && v <= 100) {
			ps.Add(p+"."+name, "must be a percentage from 0 to 100 (0 means no gate), got %s", formatFloat(v))
		}
	}
	percent("max_cpu_percent", g.MaxCPUPercent)
	percent("max_mem_percent", g.MaxMemPercent)
	if g.MaxRestarts < 0 {
		ps.Add(p+".max_restarts", "must be at least 0, got %d", g.MaxRestarts)
	}
	speccore.CheckEnum(ps, p+".baseline", string(g.Baseline), string(BaselineCompare), string(BaselineOff))
	if g.BaselineMinSamples < 1 {
		ps.Add(p+".baseline_min_samples", "must be at least 1, got %d", g.BaselineMinSamples)
	}
	if !(g.MaxErrorRate >= 0 && g.MaxErrorRate < 1) {
		ps.Add(p+".max_error_rate", `must be from "0%%" (no gate) to below "100%%", got %s%%`, formatFloat(100*g.MaxErrorRate))
	}
	if g.MaxLatencyP99 < 0 {
		ps.Add(p+".max_latency_p99", "must not be negative (0 means no gate), got %s", g.MaxLatencyP99)
	}
	speccore.AtMost(ps, p+".max_latency_p99", g.MaxLatencyP99, speccore.MaxLatencyP99)
	if g.MinRequests < 1 {
		ps.Add(p+".min_requests", "must be at least 1, got %d", g.MinRequests)
	}
	validateMetricGates(ps, g.Metric)
}

func (r Rollback) validate(ps *speccore.Problems) {
	const p = "release.rollback"
	speccore.CheckEnum(ps, p+".on_failure", string(r.OnFailure), string(OnFailureAll), string(OnFailurePhase), string(OnFailurePause),
		string(OnFailureFailAll), string(OnFailureFailLocal))
	speccore.Within(ps, p+".isolation_timeout", r.IsolationTimeout, speccore.MaxIsolationTimeout)
	if r.OnControlPlaneLoss != "" { // empty: a spec built before the field existed; agents read it as hold
		speccore.CheckEnum(ps, p+".on_control_plane_loss", string(r.OnControlPlaneLoss), string(speccore.ControlPlaneLossHold), string(speccore.ControlPlaneLossRevert))
	}
	speccore.Within(ps, p+".max_rollback_time", r.MaxRollbackTime, speccore.MaxRollbackTime)
}

func (w PostRollout) validate(ps *speccore.Problems, s Slots) {
	const p = "release.post_rollout"
	if w.Watch < 0 {
		ps.Add(p+".watch", "must not be negative (0 turns the watch off), got %s", w.Watch)
	}
	speccore.AtMost(ps, p+".watch", w.Watch, speccore.MaxPostRolloutWatch)
	if w.KeepOld == "" { // a spec stored before the field existed: no watch
		return
	}
	speccore.CheckEnum(ps, p+".keep_old", string(w.KeepOld), string(speccore.WatchKeepHot), string(speccore.WatchKeepStopped))
	// A cold bake stopped the old slot at the switch; nothing starts it
	// again for the watch.
	if w.Watch > 0 && w.KeepOld == speccore.WatchKeepHot && s.KeepOld == KeepCold {
		ps.Add(p+".keep_old", `"hot" needs slots.keep_old = "hot": with "cold" the old slot is stopped at the switch and stays stopped; write keep_old = "stopped" (rollback then starts the old slot) or slots.keep_old = "hot"`)
	}
}

func (a Approval) validate(ps *speccore.Problems) {
	const p = "release.approval.after_phases"
	seen := map[int]bool{}
	for i, n := range a.AfterPhases {
		switch {
		case n < 0:
			ps.Add(speccore.Index(p, i), "phase indexes start at 0 (the canary), got %d", n)
		case seen[n]:
			ps.Add(speccore.Index(p, i), "phase %d is listed twice", n)
		}
		seen[n] = true
	}
}

func formatFloat(f float64) string {
	return fmt.Sprintf("%g", f)
}
