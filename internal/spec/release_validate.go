package spec

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	// nameRE covers release names and versions: they appear in paths and
	// audit logs, so no spaces, slashes or control characters.
	nameRE = boundedName(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`, 128)
	// appRE: the app appears in systemd unit names and directories.
	appRE = boundedName(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`, 63)
	// userRE: a user name or numeric id for systemd's User=.
	userRE = boundedName(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`, 32)
	// envKeyRE: an environment variable name.
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// restartValues are systemd's Restart= settings.
var restartValues = []string{"no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"}

// Validate checks r as ParseRelease does, for specs that did not come
// from a file (the API, tests). It returns a Diagnostics without positions.
func (r *Release) Validate() error {
	return r.validate().diagnostics().err()
}

func (r *Release) validate() problems {
	var ps problems
	if !nameRE.MatchString(r.Name) {
		ps.add("release.name", "release name must be 1-128 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit, got %q", r.Name)
	}
	if r.App == "" {
		ps.missing("release", "app")
	} else if !appRE.MatchString(r.App) {
		ps.add("release.app", "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit (it names systemd units and directories), got %q", r.App)
	}
	if r.Version == "" {
		ps.missing("release", "version")
	} else if !nameRE.MatchString(r.Version) {
		ps.add("release.version", "must be 1-128 letters, digits, '.', '_', '+', '~' or '-', starting with a letter or digit, got %q", r.Version)
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
	validateHooks(&ps, r.Hooks)
	r.PostRollout.validate(&ps, r.Slots)
	validateRequires(&ps, r.App, r.Requires)
	if r.Converge != "" { // empty: a spec stored before the field existed; read as manual
		checkEnum(&ps, "release.converge", string(r.Converge), string(ConvergeManual), string(ConvergeAuto))
	}
	return ps
}

func (a Artifact) validate(ps *problems) {
	const p = "release.artifact"
	if a.URL == "" {
		ps.missing(p, "url")
	} else if msg := checkTemplate(a.URL, artifactPlaceholders); msg != "" {
		ps.add(p+".url", "%s", msg)
	} else if err := CheckArtifactURL(Expand(a.URL, sampleVars)); err != nil {
		// The agent runs the same check (policy.artifact_prefixes).
		ps.add(p+".url", "%s", strings.TrimPrefix(err.Error(), ErrArtifactURL.Error()+": "))
	}
	if a.SHA256 == "" {
		ps.missing(p, "sha256")
	} else if _, err := hex.DecodeString(a.SHA256); err != nil || len(a.SHA256) != 64 {
		ps.add(p+".sha256", "must be 64 hexadecimal characters, got %q (%d characters)", a.SHA256, len(a.SHA256))
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
func unitString(ps *problems, p, s string) bool {
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		ps.add(p, "must not contain control characters such as newlines, got %q", s)
		return false
	}
	if msg := checkTemplate(s, Placeholders); msg != "" {
		ps.add(p, "%s", msg)
		return false
	}
	return true
}

func (u Unit) validate(ps *problems) {
	const p = "release.unit"
	if strings.TrimSpace(u.ExecStart) == "" {
		ps.missing(p, "exec_start")
	} else {
		execCommand(ps, p+".exec_start", u.ExecStart)
	}
	if err := CheckUnitUser(u.User); err != nil {
		ps.add(p+".user", "%v", err)
	}
	for _, k := range sortedKeys(u.Environment) {
		v := u.Environment[k]
		kp := p + ".environment." + k
		if !envKeyRE.MatchString(k) {
			ps.add(kp, "environment variable name must be letters, digits and '_', not starting with a digit, got %q", k)
		}
		unitString(ps, kp, v)
	}
	if u.WorkingDirectory != "" && unitString(ps, p+".working_directory", u.WorkingDirectory) &&
		!strings.HasPrefix(Expand(u.WorkingDirectory, sampleVars), "/") {
		ps.add(p+".working_directory", "must be an absolute path or start with {{slot_dir}}, got %q", u.WorkingDirectory)
	}
	for i, c := range u.ExecStartPre {
		if strings.TrimSpace(c) == "" {
			ps.add(index(p+".exec_start_pre", i), "must not be empty")
			continue
		}
		execCommand(ps, index(p+".exec_start_pre", i), c)
	}
	checkEnum(ps, p+".restart", u.Restart, restartValues...)
	for i, h := range u.Hardening {
		if err := CheckHardeningLine(h); err != nil {
			ps.add(index(p+".hardening", i), "%v", err)
			continue
		}
		unitString(ps, index(p+".hardening", i), h)
	}
}

// execCommand checks a command line rendered into an Exec*= setting:
// unitString's checks, then CheckExecCommand (no systemd command prefix).
func execCommand(ps *problems, p, s string) {
	if !unitString(ps, p, s) {
		return
	}
	if err := CheckExecCommand(s); err != nil {
		ps.add(p, "%v", err)
	}
}

// hardeningKey is a systemd [Service] setting name.
var hardeningKey = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// checkEnum reports v unless it is one of allowed.
func checkEnum(ps *problems, p, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ps.add(p, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

func (s Slots) validate(ps *problems) {
	const p = "release.slots"
	if s.BluePort == 0 {
		ps.missing(p, "blue_port")
	} else if s.BluePort < 1 || s.BluePort > 65535 {
		ps.add(p+".blue_port", "must be a port from 1 to 65535, got %d", s.BluePort)
	}
	if s.GreenPort == 0 {
		ps.missing(p, "green_port")
	} else if s.GreenPort < 1 || s.GreenPort > 65535 {
		ps.add(p+".green_port", "must be a port from 1 to 65535, got %d", s.GreenPort)
	}
	if s.BluePort != 0 && s.BluePort == s.GreenPort {
		ps.add(p+".green_port", "must differ from blue_port, got %d for both", s.GreenPort)
	}
	checkEnum(ps, p+".keep_old", string(s.KeepOld), string(KeepHot), string(KeepCold))
}

func (t Traffic) validate(ps *problems, s Slots) {
	const p = "release.traffic"
	checkEnum(ps, p+".mode", string(t.Mode), string(TrafficProxy), string(TrafficExec), string(TrafficNone))
	switch t.Mode {
	case TrafficProxy:
		if t.Listen == "" {
			ps.add(p+".listen", `is required when mode is "proxy"; expected host:port such as ":8080"`)
		} else if msg := checkHostPort(t.Listen, 1); msg != "" {
			ps.add(p+".listen", "%s", msg)
		} else if _, port := splitPort(t.Listen); port == s.BluePort || port == s.GreenPort {
			ps.add(p+".listen", "port %d is a slot's port; the proxy needs its own port", port)
		}
	case TrafficExec:
		if len(t.Command) == 0 {
			ps.add(p+".command", `is required when mode is "exec"; expected a list such as ["/usr/local/bin/lb-switch", "{{port}}"]`)
		}
	}
	if t.Protocol != "" {
		checkEnum(ps, p+".protocol", string(t.Protocol), string(ProtocolTCP), string(ProtocolHTTP))
		if t.Mode != TrafficProxy {
			ps.add(p+".protocol", `applies to mode "proxy" only (mode is %q); remove it`, t.Mode)
		}
	}
	t.validateSteps(ps, s)
	for i, c := range t.Command {
		if msg := checkTemplate(c, trafficPlaceholders); msg != "" {
			ps.add(index(p+".command", i), "%s", msg)
		}
	}
}

// trafficPlaceholders are what traffic.command may use: the unit's
// placeholders plus the weighted step's own.
var trafficPlaceholders = append(slices.Clone(Placeholders), "weight", "old_slot", "old_port")

// validateSteps checks traffic.steps, step_time and sticky.
func (t Traffic) validateSteps(ps *problems, s Slots) {
	const p = "release.traffic"
	if len(t.Steps) == 0 {
		if t.StepTime != 0 {
			ps.add(p+".step_time", "applies only with traffic.steps; remove it or add steps")
		}
		if t.Sticky != "" {
			ps.add(p+".sticky", "applies only with traffic.steps; remove it or add steps")
		}
		return
	}
	if t.Mode != TrafficProxy && t.Mode != TrafficExec {
		ps.add(p+".steps", `need mode "proxy" or "exec" (mode is %q)`, t.Mode)
	}
	if len(t.Steps) > MaxTrafficSteps {
		ps.add(p+".steps", "at most %d steps, got %d", MaxTrafficSteps, len(t.Steps))
	}
	prev := 0
	for i, w := range t.Steps {
		switch {
		case w < 1 || w > 100:
			ps.add(index(p+".steps", i), "must be a percentage from 1 to 100, got %d", w)
		case w <= prev:
			ps.add(index(p+".steps", i), "must be above the step before (%d), got %d: steps only go up", prev, w)
		}
		prev = max(prev, w)
	}
	if last := t.Steps[len(t.Steps)-1]; last != 100 {
		ps.add(p+".steps", "the last step must be 100 (all traffic on the new version), got %d", last)
	}
	within(ps, p+".step_time", t.StepTime, MaxTrafficStepTime)
	if t.Sticky != "" {
		checkEnum(ps, p+".sticky", string(t.Sticky), string(StickyClientIP), string(StickyCookie))
		if t.Sticky == StickyCookie && (t.Mode != TrafficProxy || t.Protocol != ProtocolHTTP) {
			ps.add(p+".sticky", `"cookie" needs mode "proxy" with protocol "http"; use "client_ip" for tcp`)
		}
		if t.Mode == TrafficExec {
			ps.add(p+".sticky", `applies to mode "proxy" only: an external load balancer keeps its own stickiness`)
		}
	}
	if s.KeepOld == KeepCold {
		ps.add("release.slots.keep_old", `must be "hot" with traffic.steps: the old slot takes the rest of the traffic during the steps`)
	}
}

func (t Target) validate(ps *problems) {
	const p = "release.target"
	if len(t.Cells) == 0 {
		ps.add(p+".cells", `must list at least one glob; use ["*"] for every cell`)
	}
	globs := func(name string, list []string) {
		for i, g := range list {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				ps.add(index(p+"."+name, i), "expected a glob such as \"eu-*\", got %q", g)
			}
		}
	}
	globs("cells", t.Cells)
	globs("exclude", t.Exclude)
	for _, k := range sortedKeys(t.Labels) {
		if k == "" {
			ps.add(p+".labels", "label names must not be empty")
		}
	}
}

func (ph Phases) validate(ps *problems) {
	const p = "release.phases"
	if ph.Canary < 1 {
		ps.add(p+".canary", "must be at least 1, got %d", ph.Canary)
	}
	checkEnum(ps, p+".growth", string(ph.Growth), string(GrowthGeometric), string(GrowthLinear))
	switch ph.Growth {
	case GrowthGeometric:
		if !(ph.Factor > 1) || math.IsInf(ph.Factor, 0) {
			ps.add(p+".factor", "must be greater than 1 for geometric growth, got %s", formatFloat(ph.Factor))
		}
	case GrowthLinear:
		if ph.Step < 1 {
			ps.add(p+".step", "must be at least 1 for linear growth, got %d", ph.Step)
		}
	}
	checkQuantity(ps, p+".max_size", ph.MaxSize)
	if ph.PerCellMax < 0 {
		ps.add(p+".per_cell_max", "must be at least 0 (0 means no cap), got %d", ph.PerCellMax)
	}
	if ph.ParallelCellsAfter < 0 {
		ps.add(p+".parallel_cells_after", "must be at least 0 (0 means never), got %d", ph.ParallelCellsAfter)
	}
	if ph.ParallelRegionsAfter < 0 {
		ps.add(p+".parallel_regions_after", "must be at least 0 (0 means never), got %d", ph.ParallelRegionsAfter)
	}
}

// validateDark checks phases.dark and the shadow fields against the
// traffic they need.
func (ph Phases) validateDark(ps *problems, t Traffic, s Slots) {
	const p = "release.phases"
	if ph.Dark < 0 {
		ps.add(p+".dark", "must not be negative, got %s", ph.Dark)
	}
	atMost(ps, p+".dark", ph.Dark, MaxDark)
	if ph.Dark > 0 {
		if t.Mode != TrafficProxy && t.Mode != TrafficExec {
			ps.add(p+".dark", `needs traffic.mode "proxy" or "exec" (mode is %q): with no switch rollwave cannot keep user traffic off the new slot`, t.Mode)
		}
		if s.KeepOld == KeepCold {
			ps.add("release.slots.keep_old", `must be "hot" with phases.dark: the old slot serves every user request during the dark phase`)
		}
	}
	if !ph.Shadow {
		if ph.ShadowSample != 0 {
			ps.add(p+".shadow_sample", "applies only with shadow = true; remove it or set shadow")
		}
		if len(ph.ShadowMethods) > 0 {
			ps.add(p+".shadow_methods", "applies only with shadow = true; remove it or set shadow")
		}
		return
	}
	if ph.Dark <= 0 {
		ps.add(p+".shadow", `needs phases.dark (say dark = "2m"): requests are mirrored during the dark phase`)
	}
	if t.Mode != TrafficProxy || t.Protocol != ProtocolHTTP {
		ps.add(p+".shadow", `needs traffic.mode "proxy" with protocol "http" (mode %q, protocol %q): only the HTTP proxy can mirror requests`, t.Mode, orDefault(string(t.Protocol), string(ProtocolTCP)))
	}
	if !(ph.ShadowSample > 0 && ph.ShadowSample <= 1) {
		ps.add(p+".shadow_sample", `must be a share above 0%% and at most 100%% (say "10%%"), got %s`, formatFloat(ph.ShadowSample))
	}
	if len(ph.ShadowMethods) == 0 {
		ps.add(p+".shadow_methods", `must list at least one method, such as ["GET", "HEAD"]`)
	}
	for i, m := range ph.ShadowMethods {
		if !slices.Contains(shadowMethods, m) {
			ps.add(index(p+".shadow_methods", i), "must be one of %s (upper case), got %q", strings.Join(shadowMethods, ", "), m)
		}
		if slices.Index(ph.ShadowMethods, m) < i {
			ps.add(index(p+".shadow_methods", i), "%q is listed twice", m)
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
func checkQuantity(ps *problems, p string, q Quantity) {
	switch {
	case math.IsNaN(q.Value) || math.IsInf(q.Value, 0):
		ps.add(p, "expected a count or a percentage, got %s", q)
	case q.Percent && (q.Value < 0 || q.Value > 100):
		ps.add(p, "a percentage must be from 0%% to 100%%, got %s", q)
	case !q.Percent && q.Value < 0:
		ps.add(p, "a count must be at least 0, got %s", q)
	case !q.Percent && q.Value != math.Trunc(q.Value):
		ps.add(p, `a count must be a whole number, got %s; write a percentage as "%s%%"`, q, q)
	}
}

func (b Bake) validate(ps *problems) {
	const p = "release.bake"
	within(ps, p+".first", b.First, MaxBakeDuration)
	within(ps, p+".min", b.Min, MaxBakeDuration)
	if !(b.Decay > 0 && b.Decay <= 1) {
		ps.add(p+".decay", "must be greater than 0 and at most 1, got %s", formatFloat(b.Decay))
	}
	if b.Min > 0 && b.First > 0 && b.Min > b.First {
		ps.add(p+".min", "must not exceed first (%s), got %s", b.First, b.Min)
	}
}

// positive reports a duration that is zero or negative.
func positive(ps *problems, p string, d time.Duration) {
	if d <= 0 {
		ps.add(p, "must be a positive duration, got %s", d)
	}
}

func (g Gates) validate(ps *problems) {
	const p = "release.gates"
	checkQuantity(ps, p+".max_failed_hosts", g.MaxFailedHosts)
	checkQuantity(ps, p+".max_unreachable", g.MaxUnreachable)
	percent := func(name string, v float64) {
		if !(v >= 0 && v <= 100) {
			ps.add(p+"."+name, "must be a percentage from 0 to 100 (0 means no gate), got %s", formatFloat(v))
		}
	}
	percent("max_cpu_percent", g.MaxCPUPercent)
	percent("max_mem_percent", g.MaxMemPercent)
	if g.MaxRestarts < 0 {
		ps.add(p+".max_restarts", "must be at least 0, got %d", g.MaxRestarts)
	}
	checkEnum(ps, p+".baseline", string(g.Baseline), string(BaselineCompare), string(BaselineOff))
	if g.BaselineMinSamples < 1 {
		ps.add(p+".baseline_min_samples", "must be at least 1, got %d", g.BaselineMinSamples)
	}
	if !(g.MaxErrorRate >= 0 && g.MaxErrorRate < 1) {
		ps.add(p+".max_error_rate", `must be from "0%%" (no gate) to below "100%%", got %s%%`, formatFloat(100*g.MaxErrorRate))
	}
	if g.MaxLatencyP99 < 0 {
		ps.add(p+".max_latency_p99", "must not be negative (0 means no gate), got %s", g.MaxLatencyP99)
	}
	atMost(ps, p+".max_latency_p99", g.MaxLatencyP99, MaxLatencyP99)
	if g.MinRequests < 1 {
		ps.add(p+".min_requests", "must be at least 1, got %d", g.MinRequests)
	}
	validateMetricGates(ps, g.Metric)
}

func (r Rollback) validate(ps *problems) {
	const p = "release.rollback"
	checkEnum(ps, p+".on_failure", string(r.OnFailure), string(OnFailureAll), string(OnFailurePhase), string(OnFailurePause),
		string(OnFailureFailAll), string(OnFailureFailLocal))
	within(ps, p+".isolation_timeout", r.IsolationTimeout, MaxIsolationTimeout)
	if r.OnControlPlaneLoss != "" { // empty: a spec built before the field existed; agents read it as hold
		checkEnum(ps, p+".on_control_plane_loss", string(r.OnControlPlaneLoss), string(ControlPlaneLossHold), string(ControlPlaneLossRevert))
	}
	within(ps, p+".max_rollback_time", r.MaxRollbackTime, MaxRollbackTime)
}

func (w PostRollout) validate(ps *problems, s Slots) {
	const p = "release.post_rollout"
	if w.Watch < 0 {
		ps.add(p+".watch", "must not be negative (0 turns the watch off), got %s", w.Watch)
	}
	atMost(ps, p+".watch", w.Watch, MaxPostRolloutWatch)
	if w.KeepOld == "" { // a spec stored before the field existed: no watch
		return
	}
	checkEnum(ps, p+".keep_old", string(w.KeepOld), string(WatchKeepHot), string(WatchKeepStopped))
	// A cold bake stopped the old slot at the switch; nothing starts it
	// again for the watch.
	if w.Watch > 0 && w.KeepOld == WatchKeepHot && s.KeepOld == KeepCold {
		ps.add(p+".keep_old", `"hot" needs slots.keep_old = "hot": with "cold" the old slot is stopped at the switch and stays stopped; write keep_old = "stopped" (rollback then starts the old slot) or slots.keep_old = "hot"`)
	}
}

func (a Approval) validate(ps *problems) {
	const p = "release.approval.after_phases"
	seen := map[int]bool{}
	for i, n := range a.AfterPhases {
		switch {
		case n < 0:
			ps.add(index(p, i), "phase indexes start at 0 (the canary), got %d", n)
		case seen[n]:
			ps.add(index(p, i), "phase %d is listed twice", n)
		}
		seen[n] = true
	}
}

func formatFloat(f float64) string {
	return fmt.Sprintf("%g", f)
}

// splitPort returns addr's host and numeric port (0 when unparsable).
func splitPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// sortedKeys returns m's keys in order, so Validate reports map entries
// deterministically.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
