//go:build e2e

package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// The rollout scenarios (b–e) run on five hosts in two cells (bootFleet
// alternates cell-a and cell-b): the default plan (canary 1, factor 2,
// one cell at a time) gives three phases, h1 | h3,h5 | h2,h4.
const rolloutHosts = 5

const (
	phBaking   = rollwavev1.PhaseState_PHASE_STATE_BAKING
	phVerified = rollwavev1.PhaseState_PHASE_STATE_VERIFIED
	phFailed   = rollwavev1.PhaseState_PHASE_STATE_FAILED

	relSucceeded  = rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED
	relRolledBack = rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK

	asFinalized        = rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED
	asReverted         = rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED
	asRevertedIsolated = rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED
)

// startRelease submits and starts spec and returns the release id.
func startRelease(t *testing.T, cs *fleet.Coordinators, spec string) string {
	t.Helper()
	rel, err := cs.StartRelease(spec)
	if err != nil {
		t.Fatal(err)
	}
	return rel.GetId()
}

// waitPhase waits until phase idx of the release is in want and returns
// the release as read then.
func waitPhase(t *testing.T, cs *fleet.Coordinators, id string, idx int, want rollwavev1.PhaseState, timeout time.Duration) *rollwavev1.GetReleaseResponse {
	t.Helper()
	var resp *rollwavev1.GetReleaseResponse
	testutil.WaitFor(t, timeout, func() (bool, string) {
		r, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		resp = r
		ps := r.GetRelease().GetPhases()
		if idx >= len(ps) {
			return false, fmt.Sprintf("release %s is %s with %d phase(s), want phase %d %s", id, r.GetRelease().GetState(), len(ps), idx, want)
		}
		return ps[idx].GetState() == want, fmt.Sprintf("release %s is %s, phase %d is %s, want %s (reason %q)",
			id, r.GetRelease().GetState(), idx, ps[idx].GetState(), want, ps[idx].GetReason())
	})
	return resp
}

// assignmentsOf returns the release's assignments (all generations) of
// host.
func assignmentsOf(resp *rollwavev1.GetReleaseResponse, host string) []*rollwavev1.Assignment {
	var out []*rollwavev1.Assignment
	for _, a := range resp.GetAssignments() {
		if a.GetHost() == host {
			out = append(out, a)
		}
	}
	return out
}

// checkPhased checks the release's plan covers every host exactly once in
// at least two phases over both cells, and that no host of a phase was
// assigned before the previous phase was verified.
func checkPhased(t *testing.T, resp *rollwavev1.GetReleaseResponse, hosts []*fleet.Host) {
	t.Helper()
	phases := resp.GetRelease().GetPhases()
	if len(phases) < 2 {
		t.Fatalf("release %s has %d phase(s), want a phased rollout", resp.GetRelease().GetId(), len(phases))
	}
	seen := map[string]int{}
	cells := map[string]bool{}
	for _, p := range phases {
		for _, h := range p.GetHosts() {
			seen[h]++
		}
		for _, c := range p.GetCells() {
			cells[c] = true
		}
		t.Logf("phase %d: hosts %v cells %v bake %s state %s", p.GetIndex(), p.GetHosts(), p.GetCells(),
			time.Duration(p.GetBakeMs())*time.Millisecond, p.GetState())
	}
	for _, h := range hosts {
		if seen[h.Name] != 1 {
			t.Errorf("%s is in %d phase(s) of the plan, want 1", h.Name, seen[h.Name])
		}
	}
	if len(cells) < 2 {
		t.Errorf("plan touches cells %v, want both", cells)
	}
	for i := 1; i < len(phases); i++ {
		prevDone := phases[i-1].GetFinishedUnixNano()
		for _, h := range phases[i].GetHosts() {
			for _, a := range assignmentsOf(resp, h) {
				if prevDone == 0 || a.GetCreatedUnixNano() < prevDone {
					t.Errorf("%s (phase %d) assigned at %s, before phase %d was verified (%s)", h, i,
						time.Unix(0, a.GetCreatedUnixNano()).UTC().Format(time.RFC3339Nano), i-1,
						time.Unix(0, prevDone).UTC().Format(time.RFC3339Nano))
				}
			}
		}
	}
}

// slotVersionFile reads the config/version file installed in a slot.
func slotVersionFile(h *fleet.Host, s slot.Name) (string, error) {
	b, err := h.ReadFile(filepath.Join(fleet.AgentDataDir, "apps", fleet.DemoApp, string(s), "config", "version"))
	return strings.TrimSpace(string(b)), err
}

// checkLogs runs `rollwave logs HOST demo` with a token of role read and
// checks that it shows the line the demo app printed at start, read from
// the journal of the unit of the host's active slot, and that -json names
// that slot. It returns the read token's secret.
func checkLogs(t *testing.T, cs *fleet.Coordinators, h *fleet.Host, version string) string {
	t.Helper()
	out, errOut, err := cs.CLI("acl", "token", "create", "-name", "e2e-logs-reader", "-role", "read", "-json")
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	var tok rollwavev1.ACLTokenSecretResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), &tok); err != nil || tok.GetSecret() == "" {
		t.Fatalf("decode acl token create -json: %v\n%s", err, out)
	}
	st, err := h.SlotState(fleet.DemoApp)
	if err != nil {
		t.Fatal(err)
	}
	want := "demo-app " + version + " listening on"
	start := time.Now()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		out, errOut, err := cs.CLI("logs", h.Name, fleet.DemoApp, "-n", "50", "-token", tok.GetSecret())
		return err == nil && strings.Contains(out, want), fmt.Sprintf("rollwave logs: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	})
	t.Logf("TIMING rollwave logs showed %q from %s's journal: %s", want, h.Name, time.Since(start).Round(time.Millisecond))
	if out, _, err := cs.CLI("logs", h.Name, fleet.DemoApp, "-n", "5", "-token", tok.GetSecret()); err == nil {
		t.Logf("rollwave logs %s %s -n 5:\n%s", h.Name, fleet.DemoApp, out)
	}
	out, errOut, err = cs.CLI("logs", h.Name, fleet.DemoApp, "-n", "50", "-json", "-token", tok.GetSecret())
	if err != nil {
		t.Fatalf("rollwave logs -json: %v: %s", err, errOut)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l struct {
			Slot, Version, Message string
			TimeUnixNano           int64 `json:"time_unix_nano"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("rollwave logs -json line %q: %v", line, err)
		}
		if l.Slot != string(st.Active) || l.Version != version {
			t.Fatalf("rollwave logs -json line names slot %s version %s, want the active slot %s, %s", l.Slot, l.Version, st.Active, version)
		}
		if strings.Contains(l.Message, want) {
			found = true
			if l.TimeUnixNano == 0 {
				t.Errorf("journal line %q has no time", l.Message)
			}
		}
	}
	if !found {
		t.Fatalf("rollwave logs -json lacks %q:\n%s", want, out)
	}
	return tok.GetSecret()
}

func otherSlot(s slot.Name) slot.Name {
	if s == slot.Blue {
		return slot.Green
	}
	return slot.Blue
}

// TestPhasedRollout is scenario (b): a v1 → v2 rollout in phases over
// five hosts in two cells succeeds. systemd inside each host shows
// rollwave-demo-blue/green swapped; the traffic port answers v2; with
// keep_old = "hot" the old slot keeps running during the bake (checked on
// the canary, while the later phases still serve v1) and is stopped at
// finalize, its files kept.
func TestPhasedRollout(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, rolloutHosts)
	const v1, v2 = "1.0.0", "2.0.0"
	deployDemo(t, f, cs, hosts, v1)
	reader := checkLogs(t, cs, hosts[0], v1)

	// After v1: exactly the slot the state file names is active.
	activeV1 := map[string]slot.Name{}
	for _, h := range hosts {
		st := checkServesActiveSlot(t, h)
		activeV1[h.Name] = st.Active
		if got := h.IsActive(fleet.SlotUnit(fleet.DemoApp, st.Active)); got != "active" {
			t.Errorf("%s: after v1 %s is %q", h.Name, fleet.SlotUnit(fleet.DemoApp, st.Active), got)
		}
		if got := h.IsActive(fleet.SlotUnit(fleet.DemoApp, otherSlot(st.Active))); got == "active" {
			t.Errorf("%s: after v1 the idle %s is active", h.Name, fleet.SlotUnit(fleet.DemoApp, otherSlot(st.Active)))
		}
	}

	// Follow the canary's v1 slot through the rollout: finalize stops it,
	// and systemd's lines about that arrive on the running `logs -f`.
	canaryOld := activeV1[hosts[0].Name]
	follow, stopFollow, err := cs.CLIStart("logs", hosts[0].Name, fleet.DemoApp, "-slot", string(canaryOld), "-n", "1", "-f", "-token", reader)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	art := f.PublishDemo(v2, true)
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v2, v2, art, fleet.DemoSpecOptions{Bake: "6s", KeepOld: "hot"}))

	// The canary bakes: both of its slots run (keep_old = hot), traffic
	// goes to v2, the hosts of later phases still serve v1.
	resp := waitPhase(t, cs, id, 0, phBaking, 60*time.Second)
	t.Logf("TIMING v2 canary baking: %s", time.Since(start).Round(time.Millisecond))
	canary := resp.GetRelease().GetPhases()[0].GetHosts()
	for _, name := range canary {
		h := f.Host(name)
		old := activeV1[name]
		for _, s := range []slot.Name{slot.Blue, slot.Green} {
			if got := h.IsActive(fleet.SlotUnit(fleet.DemoApp, s)); got != "active" {
				t.Errorf("%s: during the bake %s is %q, want active (keep_old = hot)", name, fleet.SlotUnit(fleet.DemoApp, s), got)
			}
		}
		if got, err := h.ServedVersion(); err != nil || got != v2 {
			t.Errorf("%s: during the bake the traffic port answers %q (%v), want %s", name, got, err, v2)
		}
		if got, err := h.Curl(map[slot.Name]int{slot.Blue: fleet.DemoBluePort, slot.Green: fleet.DemoGreenPort}[old], "/"); err != nil || strings.TrimSpace(got) != v1 {
			t.Errorf("%s: during the bake the hot old slot %s answers %q (%v), want %s", name, old, got, err, v1)
		}
	}
	for _, h := range hosts {
		if slices.Contains(canary, h.Name) {
			continue
		}
		if got, err := h.ServedVersion(); err != nil || got != v1 {
			t.Errorf("%s (later phase): while the canary bakes it answers %q (%v), want %s", h.Name, got, err, v1)
		}
	}

	cs.WaitRelease(id, relSucceeded, 3*time.Minute)
	t.Logf("TIMING v2 phased rollout to %d hosts until succeeded: %s", len(hosts), time.Since(start).Round(time.Millisecond))
	resp, err = cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	checkPhased(t, resp, hosts)
	stopped := "Stopped " + fleet.SlotUnit(fleet.DemoApp, canaryOld)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(follow(), stopped), fmt.Sprintf("rollwave logs -f of %s's %s slot has not shown %q:\n%s", hosts[0].Name, canaryOld, stopped, follow())
	})
	if err := stopFollow(); err != nil {
		t.Fatalf("rollwave logs -f, interrupted: %v; want exit 0", err)
	}
	t.Logf("rollwave logs -f of %s's old slot %s during the rollout:\n%s", hosts[0].Name, canaryOld, follow())
	for _, h := range hosts {
		as := assignmentsOf(resp, h.Name)
		if len(as) != 1 || as[0].GetState() != asFinalized {
			t.Errorf("%s: assignments of %s: %v, want one finalized", h.Name, id, as)
		}
	}

	// Swapped: the new slot's unit runs and serves v2; the old one is
	// stopped by finalize and keeps its files (v1).
	for _, h := range hosts {
		old, cur := activeV1[h.Name], otherSlot(activeV1[h.Name])
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			a, o := h.IsActive(fleet.SlotUnit(fleet.DemoApp, cur)), h.IsActive(fleet.SlotUnit(fleet.DemoApp, old))
			return a == "active" && o != "active", fmt.Sprintf("%s: %s is %q, old %s is %q", h.Name,
				fleet.SlotUnit(fleet.DemoApp, cur), a, fleet.SlotUnit(fleet.DemoApp, old), o)
		})
		st := checkServesActiveSlot(t, h)
		if st.Active != cur || st.Slots[cur].Version != v2 {
			t.Errorf("%s: state file active %s (%+v), want %s with %s", h.Name, st.Active, st.Slots[st.Active], cur, v2)
		}
		if st.Slots[old] == nil || st.Slots[old].Version != v1 {
			t.Errorf("%s: state file lost the old slot %s: %+v", h.Name, old, st.Slots[old])
		}
		if got, err := slotVersionFile(h, old); err != nil || got != v1 {
			t.Errorf("%s: old slot %s files: version %q (%v), want %s kept", h.Name, old, got, err, v1)
		}
		if _, err := h.ReadFile(filepath.Join(fleet.AgentDataDir, "apps", fleet.DemoApp, string(old), "bin", "demo-app")); err != nil {
			t.Errorf("%s: old slot %s binary not kept: %v", h.Name, old, err)
		}
		t.Logf("%s: %s -> %s (old %s kept, stopped)", h.Name, old, cur, v1)
	}
}

// TestFailingHealthRollsBack is scenario (c): v3 turns unhealthy 4s after
// it starts, i.e. after it passed readiness and took traffic on the
// canary, during its bake. The agent's bake monitor reverts it, the
// phase fails (max_failed_hosts = 0), rollback.on_failure = all rolls the
// release back, and every host answers v2 through its traffic port.
func TestFailingHealthRollsBack(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, rolloutHosts)
	const v2, v3 = "2.0.0", "3.0.0"
	deployDemo(t, f, cs, hosts, v2)

	start := time.Now()
	art := f.PublishDemoWith(v3, "4s")
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v3, v3, art, fleet.DemoSpecOptions{Bake: "15s"}))
	cs.WaitRelease(id, relRolledBack, 2*time.Minute)
	t.Logf("TIMING v3 (unhealthy after 4s) start until rolled_back: %s", time.Since(start).Round(time.Millisecond))

	resp, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetRelease()
	t.Logf("release %s: %s (%s)", id, r.GetState(), r.GetReason())
	if p := r.GetPhases()[0]; p.GetState() != phFailed {
		t.Errorf("phase 0 is %s (%s), want failed", p.GetState(), p.GetReason())
	}
	canary := r.GetPhases()[0].GetHosts()
	for _, a := range resp.GetAssignments() {
		if !slices.Contains(canary, a.GetHost()) {
			t.Errorf("%s outside the canary was assigned (phase %d, %s)", a.GetHost(), a.GetPhase(), a.GetState())
		}
		if a.GetState() != asReverted {
			t.Errorf("%s: assignment %d is %s (%s), want reverted", a.GetHost(), a.GetGeneration(), a.GetState(), a.GetReason())
		}
		t.Logf("%s generation %d: %s (%s)", a.GetHost(), a.GetGeneration(), a.GetState(), a.GetReason())
	}
	evs, err := cs.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.GetKind())
		if e.GetKind() == "gate.failed" {
			t.Logf("gate.failed: %s", e.GetMessage())
		}
	}
	for _, k := range []string{"gate.failed", "release.rolled_back"} {
		if !slices.Contains(kinds, k) {
			t.Errorf("no %s event; events: %v", k, kinds)
		}
	}
	for _, h := range hosts {
		waitServes(t, h, v2)
		st := checkServesActiveSlot(t, h)
		if st.Slots[st.Active].Version != v2 {
			t.Errorf("%s: active slot %s holds %q, want %s", h.Name, st.Active, st.Slots[st.Active].Version, v2)
		}
	}
	t.Logf("TIMING v3 start until every host answers %s: %s", v2, time.Since(start).Round(time.Millisecond))
}

// TestIsolatedHostReverts is scenario (d). During a v1 → v2 rollout a
// host of the current phase is cut off in the middle of its bake: its
// agent's isolation watchdog reverts it alone, so it serves v1 within
// isolation_timeout + 2s (queried from inside the host). At the same time
// a host of the already verified canary phase is cut off: it keeps v2.
// After the heal the coordinators record the cut host's assignment as
// reverted_isolated. A cut-off host is unreachable, not failed (issue 13
// item 7): it counts against max_unreachable, which is 0 here, so the
// phase fails on max_unreachable — the evidence names the host and that it
// reverted isolated — and rollback.on_failure = all rolls the release
// back: every host serves v1 in the end. (With max_unreachable = 1 the
// release goes on instead: TestCutOffHostConvergesAfterHeal.)
func TestIsolatedHostReverts(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, rolloutHosts)
	const v1, v2 = "1.0.0", "2.0.0"
	const isolation = 5 * time.Second
	deployDemo(t, f, cs, hosts, v1)

	start := time.Now()
	art := f.PublishDemo(v2, true)
	// decay 1: phase 1 bakes as long as the canary, long enough to cut a
	// host in the middle of it.
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v2, v2, art, fleet.DemoSpecOptions{
		Bake: "18s", Decay: "1", IsolationTimeout: isolation.String(),
	}))
	resp := waitPhase(t, cs, id, 1, phBaking, 90*time.Second)
	t.Logf("TIMING v2 phase 1 baking: %s", time.Since(start).Round(time.Millisecond))
	phases := resp.GetRelease().GetPhases()
	if phases[0].GetState() != phVerified {
		t.Fatalf("phase 0 is %s while phase 1 bakes", phases[0].GetState())
	}
	baking := f.Host(phases[1].GetHosts()[0])
	verified := f.Host(phases[0].GetHosts()[0])
	// The verified host was told so (PhaseVerified): it must not revert
	// on lost contact any more.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err := verified.SlotState(fleet.DemoApp)
		if err != nil {
			return false, err.Error()
		}
		return st.Verified, fmt.Sprintf("%s: state file generation %d phase %s verified=%v", verified.Name, st.Generation, st.Phase, st.Verified)
	})
	waitServes(t, baking, v2)
	waitServes(t, verified, v2)
	// Into the bake: 4s after it started (the deadline in raft minus the
	// bake), leaving the cut, the isolated revert, the heal and its report
	// well before the deadline.
	deadline := time.Unix(0, phases[1].GetBakeDeadlineUnixNano())
	into := deadline.Add(-time.Duration(phases[1].GetBakeMs())*time.Millisecond + 4*time.Second)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return !time.Now().Before(into), fmt.Sprintf("%s to 4s into phase 1's bake", time.Until(into).Round(time.Millisecond))
	})
	// The scenario needs phase 1 still baking at the cut: a phase that
	// already failed (a host failing its checks on a loaded machine) would
	// make every later assertion about something else.
	if now, err := cs.Release(id); err != nil {
		t.Fatal(err)
	} else if ph := now.GetRelease().GetPhases()[1]; ph.GetState() != phBaking {
		t.Fatalf("phase 1 is %s (%s) before the cut, want baking\n%s", ph.GetState(), ph.GetReason(), isolationDiag(cs, id, f, phases[1].GetHosts()))
	}
	t.Logf("cutting %s (phase 1, baking, %s of bake left) and %s (phase 0, verified)", baking.Name,
		time.Until(deadline).Round(time.Millisecond), verified.Name)

	cut := time.Now()
	if err := baking.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := verified.Cut(); err != nil {
		t.Fatal(err)
	}
	// Poll both from inside: the baking host must come back to v1 by
	// itself, the verified one must keep v2 past isolation_timeout + 2s.
	// The target (isolation_timeout + 2s) is measured by make bench
	// (test/bench/realhost); the test waits longer on a loaded machine and
	// asserts the revert, not its speed.
	limit := isolation + 2*time.Second
	bound := isolation + 15*time.Second
	var reverted time.Duration
	for time.Since(cut) <= limit+time.Second || (reverted == 0 && time.Since(cut) <= bound) {
		if reverted == 0 {
			if got, err := baking.ServedVersion(); err == nil && got == v1 {
				reverted = time.Since(cut)
				t.Logf("TIMING d: %s cut until its traffic port answers %s again: %.2fs (isolation_timeout %s)",
					baking.Name, v1, reverted.Seconds(), isolation)
			}
		}
		if got, err := verified.ServedVersion(); err != nil || got != v2 {
			t.Fatalf("%s (verified phase) answers %q (%v) %s after the cut, want %s", verified.Name, got, err,
				time.Since(cut).Round(time.Millisecond), v2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if reverted == 0 {
		got, err := baking.ServedVersion()
		t.Fatalf("%s still answers %q (%v) %s after the cut; want %s by itself (isolation_timeout %s)\n%s",
			baking.Name, got, err, time.Since(cut).Round(time.Millisecond), v1, isolation, isolationDiag(cs, id, f, phases[1].GetHosts()))
	}
	if reverted > limit {
		t.Logf("%s reverted %.2fs after the cut, above the isolation_timeout + 2s target (%s) on this machine", baking.Name, reverted.Seconds(), limit)
	}
	t.Logf("%s (verified phase) kept %s for %s while cut off", verified.Name, v2, time.Since(cut).Round(time.Millisecond))
	if st, err := baking.SlotState(fleet.DemoApp); err != nil || st.Slots[st.Active].Version != v1 {
		t.Errorf("%s: state file after the isolated revert: %+v (%v), want active %s", baking.Name, st, err, v1)
	}

	healed := time.Now()
	for _, h := range []*fleet.Host{baking, verified} {
		if err := h.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		resp, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		as := assignmentsOf(resp, baking.Name)
		if len(as) == 0 {
			return false, baking.Name + " has no assignment"
		}
		last := as[len(as)-1]
		return last.GetState() == asRevertedIsolated, fmt.Sprintf("%s generation %d is %s (%s); release %s",
			baking.Name, last.GetGeneration(), last.GetState(), last.GetReason(), resp.GetRelease().GetState())
	})
	t.Logf("TIMING d: heal until the coordinators show %s reverted_isolated: %s", baking.Name, time.Since(healed).Round(time.Millisecond))
	if out, _, err := cs.CLI("release", "get", id); err == nil {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, baking.Name) {
				t.Logf("rollwave release get: %s", strings.TrimSpace(line))
			}
		}
	}

	// What the release does about it: the phase fails, the release rolls
	// back (design: host gate / budgets, rollback.on_failure = all).
	cs.WaitRelease(id, relRolledBack, 2*time.Minute)
	t.Logf("TIMING d: v2 start until rolled_back: %s", time.Since(start).Round(time.Millisecond))
	resp, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetRelease()
	t.Logf("release %s: %s (%s); phase 1 %s (%s)", id, r.GetState(), r.GetReason(), r.GetPhases()[1].GetState(), r.GetPhases()[1].GetReason())
	if r.GetPhases()[1].GetState() != phFailed {
		t.Errorf("phase 1 is %s, want failed", r.GetPhases()[1].GetState())
	}
	evs, err := cs.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	unreachableGate := false
	for _, e := range evs {
		switch e.GetKind() {
		case "gate.failed", "host.failed", "host.unreachable":
			t.Logf("%s: %s %v", e.GetKind(), e.GetMessage(), e.GetEvidence())
		}
		if e.GetKind() == "host.failed" && e.GetHost() == baking.Name {
			t.Errorf("%s counted as failed: %s", baking.Name, e.GetMessage())
		}
		if e.GetKind() == "gate.failed" && e.GetPhase() == 1 && e.GetEvidence()["gate"] == "max_unreachable" &&
			strings.Contains(e.GetEvidence()["hosts"], baking.Name) {
			unreachableGate = true
		}
	}
	if !unreachableGate {
		t.Errorf("no gate.failed max_unreachable naming %s in phase 1", baking.Name)
	}
	if as := assignmentsOf(resp, baking.Name); len(as) != 1 || as[0].GetState() != asRevertedIsolated {
		t.Errorf("%s: assignments %v, want one reverted_isolated", baking.Name, as)
	}
	for _, h := range hosts {
		waitServes(t, h, v1)
		checkServesActiveSlot(t, h)
	}
	for _, a := range resp.GetAssignments() {
		t.Logf("%s generation %d phase %d: %s", a.GetHost(), a.GetGeneration(), a.GetPhase(), a.GetState())
	}
}

// isolationDiag is what a failed isolation scenario prints: the release's
// events and the agent journals of the given hosts.
func isolationDiag(cs *fleet.Coordinators, id string, f *fleet.Fleet, hosts []string) string {
	var b strings.Builder
	if evs, err := cs.Events(id); err != nil {
		fmt.Fprintf(&b, "events: %v\n", err)
	} else {
		for _, e := range evs {
			fmt.Fprintf(&b, "event %s phase %d host %q: %s %v\n", e.GetKind(), e.GetPhase(), e.GetHost(), e.GetMessage(), e.GetEvidence())
		}
	}
	for _, h := range hosts {
		fmt.Fprintf(&b, "--- %s agent journal:\n%s\n", h, f.Host(h).Journal(fleet.AgentUnit, 40))
	}
	return b.String()
}

// TestLeaderKilledMidRollout is scenario (e): the raft leader is
// SIGKILLed while the canary bakes; the new leader continues the same
// (absolute) bake countdown, the release succeeds, and no host has more
// than one assignment of the release.
func TestLeaderKilledMidRollout(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, rolloutHosts)
	const v1, v2 = "1.0.0", "2.0.0"
	deployDemo(t, f, cs, hosts, v1)

	start := time.Now()
	art := f.PublishDemo(v2, true)
	// isolation_timeout must outlast a failover: the agents get no
	// heartbeat ack from the kill until the new leader is elected (~2 s)
	// and they reconnected to it, on top of up to one heartbeat interval
	// (2 s) since the last ack. With demoapp.Spec's 3s the baking canary
	// reverts itself (isolated) during the election and the release rolls
	// back (seen in 1 of 2 runs); the product default is 30s.
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v2, v2, art, fleet.DemoSpecOptions{Bake: "20s", IsolationTimeout: "15s"}))
	resp := waitPhase(t, cs, id, 0, phBaking, 60*time.Second)
	p0 := resp.GetRelease().GetPhases()[0]
	deadline := time.Unix(0, p0.GetBakeDeadlineUnixNano())
	bake := time.Duration(p0.GetBakeMs()) * time.Millisecond
	// The middle of the canary's bake: the deadline stored in raft.
	mid := deadline.Add(-bake / 2)
	testutil.WaitFor(t, bake, func() (bool, string) {
		return !time.Now().Before(mid), fmt.Sprintf("%s to the middle of the bake", time.Until(mid).Round(time.Millisecond))
	})
	before, err := cs.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	var lastSeq uint64
	if len(before) > 0 {
		lastSeq = before[len(before)-1].GetSeq()
	}
	old := cs.WaitLeader(30 * time.Second)
	killed := time.Now()
	old.Kill()
	t.Logf("killed leader %s %s into the canary's bake (%s left)", old.Name, (bake - deadline.Sub(killed)).Round(time.Millisecond),
		deadline.Sub(killed).Round(time.Millisecond))
	leader := cs.WaitLeader(60 * time.Second)
	if leader == old {
		t.Fatalf("leader is still the killed %s", old.Name)
	}
	t.Logf("TIMING e: new leader %s after killing %s: %s", leader.Name, old.Name, time.Since(killed).Round(time.Millisecond))

	var next *rollwavev1.Event
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		evs, err := cs.Events(id)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			if e.GetSeq() > lastSeq && e.GetTimeUnixNano() > killed.UnixNano() {
				next = e
				return true, ""
			}
		}
		return false, fmt.Sprintf("no event after the kill yet (%d events)", len(evs))
	})
	progress := time.Unix(0, next.GetTimeUnixNano()).Sub(killed)
	t.Logf("TIMING e: leader killed until the next recorded progress (%s phase %d by %s: %s): %.2fs; the bake deadline was %.2fs after the kill, so progress came %.2fs after it",
		next.GetKind(), next.GetPhase(), next.GetActor(), next.GetMessage(), progress.Seconds(),
		deadline.Sub(killed).Seconds(), time.Unix(0, next.GetTimeUnixNano()).Sub(deadline).Seconds())
	if next.GetPhase() == 0 && time.Unix(0, next.GetTimeUnixNano()).Before(deadline) && strings.HasPrefix(next.GetKind(), "gate.") {
		t.Errorf("phase 0 gates read before the bake deadline: %s", next.GetMessage())
	}

	cs.WaitRelease(id, relSucceeded, 3*time.Minute)
	t.Logf("TIMING e: v2 start until succeeded across the leader kill: %s", time.Since(start).Round(time.Millisecond))
	resp, err = cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	checkPhased(t, resp, hosts)
	for _, h := range hosts {
		as := assignmentsOf(resp, h.Name)
		if len(as) != 1 {
			t.Errorf("%s has %d assignments of %s, want exactly 1: %v", h.Name, len(as), id, as)
			continue
		}
		if as[0].GetState() != asFinalized {
			t.Errorf("%s: assignment %d is %s, want finalized", h.Name, as[0].GetGeneration(), as[0].GetState())
		}
		t.Logf("%s: one assignment, generation %d phase %d %s", h.Name, as[0].GetGeneration(), as[0].GetPhase(), as[0].GetState())
	}
	evs, err := cs.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	assigned := map[string]int{}
	for _, e := range evs {
		if e.GetKind() != "hosts.assigned" {
			continue
		}
		for _, h := range strings.Split(e.GetEvidence()["hosts"], ",") {
			if h != "" {
				assigned[h]++
			}
		}
	}
	for _, h := range hosts {
		if assigned[h.Name] != 1 {
			t.Errorf("%s appears in %d hosts.assigned events, want 1", h.Name, assigned[h.Name])
		}
		waitServes(t, h, v2)
	}
}
