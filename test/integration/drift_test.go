//go:build e2e

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// Drift and convergence on real hosts (issue 13 items 5 and 7): a host
// left behind by a release — cut off mid-bake, or powered off during the
// rollout — is drifted (`rollwave hosts -drift`) and converges to the
// app's last succeeded release, by itself with converge = "auto" or after
// `rollwave release converge APP` with "manual".

// driftOf returns the drift entries of host as the coordinators list them
// with `hosts -drift` (cs.Hosts() reads `rollwave hosts -json`, which
// carries the same drift field).
func driftOf(t *testing.T, cs *fleet.Coordinators, host string) []*rollwavev1.DriftedHost {
	t.Helper()
	views, err := cs.Hosts()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if v.GetHost().GetId() == host {
			return v.GetDrift()
		}
	}
	return nil
}

// logDrift logs `rollwave hosts -drift` as a user reads it.
func logDrift(t *testing.T, cs *fleet.Coordinators, when string) string {
	t.Helper()
	out, errOut, err := cs.CLI("hosts", "-drift")
	if err != nil {
		t.Fatalf("rollwave hosts -drift: %v: %s", err, errOut)
	}
	t.Logf("rollwave hosts -drift (%s):\n%s", when, strings.TrimRight(out, "\n"))
	return out
}

// waitDrifted waits until the coordinators list host as drifted from
// has to wants (release id) and returns the entry.
func waitDrifted(t *testing.T, cs *fleet.Coordinators, host, has, wants, id string, timeout time.Duration) *rollwavev1.DriftedHost {
	t.Helper()
	var got *rollwavev1.DriftedHost
	testutil.WaitFor(t, timeout, func() (bool, string) {
		d := driftOf(t, cs, host)
		if len(d) != 1 {
			return false, fmt.Sprintf("%s drift: %v", host, d)
		}
		got = d[0]
		return d[0].GetHasVersion() == has && d[0].GetWantsVersion() == wants && d[0].GetReleaseId() == id,
			fmt.Sprintf("%s drift: %v, want has %s wants %s (%s)", host, d[0], has, wants, id)
	})
	return got
}

// waitNoDrift waits until no host is drifted.
func waitNoDrift(t *testing.T, cs *fleet.Coordinators, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		views, err := cs.Hosts()
		if err != nil {
			return false, err.Error()
		}
		var drifted []string
		for _, v := range views {
			for _, d := range v.GetDrift() {
				drifted = append(drifted, fmt.Sprintf("%s (%s: has %s, wants %s)", v.GetHost().GetId(), d.GetApp(), d.GetHasVersion(), d.GetWantsVersion()))
			}
		}
		return len(drifted) == 0, fmt.Sprintf("drifted: %v", drifted)
	})
}

// waitConverged waits until the convergence release id exists and
// succeeded, logs its events and checks it moved exactly host.
func waitConverged(t *testing.T, cs *fleet.Coordinators, id, host string, timeout time.Duration) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() (bool, string) {
		r, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		st := r.GetRelease().GetState()
		if st == rollwavev1.ReleaseState_RELEASE_STATE_FAILED || st == relRolledBack {
			t.Fatalf("convergence release %s ended %s: %s", id, st, r.GetRelease().GetReason())
		}
		return st == relSucceeded, fmt.Sprintf("%s is %s (%s)", id, st, r.GetRelease().GetReason())
	})
	r, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	var moved []string
	for _, a := range r.GetAssignments() {
		moved = append(moved, a.GetHost())
	}
	if len(moved) != 1 || moved[0] != host {
		t.Errorf("convergence release %s assigned %v, want only %s", id, moved, host)
	}
	t.Logf("release %s: %s (%s)", id, r.GetRelease().GetState(), r.GetRelease().GetReason())
	logEvents(t, cs, id, "release.converge", "hosts.assigned", "release.succeeded")
}

// logEvents logs the release's events of the given kinds (all when none).
func logEvents(t *testing.T, cs *fleet.Coordinators, id string, kinds ...string) []*rollwavev1.Event {
	t.Helper()
	evs, err := cs.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if len(kinds) == 0 || containsStr(kinds, e.GetKind()) {
			t.Logf("event %s %s phase=%d host=%s: %s %v", id, e.GetKind(), e.GetPhase(), e.GetHost(), e.GetMessage(), e.GetEvidence())
		}
	}
	return evs
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkLeftAlone checks the release succeeded counting host as
// unreachable (a host.unreachable event, a passed max_unreachable gate
// naming it) and never as failed.
func checkLeftAlone(t *testing.T, cs *fleet.Coordinators, id, host string) {
	t.Helper()
	evs := logEvents(t, cs, id, "host.unreachable", "host.failed", "gate.passed", "gate.failed", "release.succeeded")
	unreachable := false
	for _, e := range evs {
		if e.GetKind() == "host.failed" && e.GetHost() == host {
			t.Errorf("%s counted as failed: %s", host, e.GetMessage())
		}
		if e.GetKind() == "host.unreachable" && e.GetHost() == host {
			unreachable = true
		}
	}
	if !unreachable {
		t.Errorf("no host.unreachable event for %s in %s", host, id)
	}
}

// TestCutOffHostConvergesAfterHeal: with max_failed_hosts = 0,
// max_unreachable = 1 and converge = "auto", a phase-1 host whose link is
// cut 4 s into its bake reverts to v1 by itself (queried inside it); it
// stays cut off while the release goes on and succeeds on the other four
// hosts (the cut host counted unreachable at the bake deadline, not
// failed). After the heal it reports the revert, `hosts -drift` lists it
// (has v1, wants v2), and the leader converges it by itself (a
// convergence release of that one host): it serves v2 and nothing is
// drifted any more.
func TestCutOffHostConvergesAfterHeal(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, rolloutHosts)
	const v1, v2 = "1.0.0", "2.0.0"
	const isolation = 5 * time.Second
	deployDemo(t, f, cs, hosts, v1)

	start := time.Now()
	art := f.PublishDemo(v2, true)
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v2, v2, art, fleet.DemoSpecOptions{
		Bake: "12s", Decay: "1", IsolationTimeout: isolation.String(),
		MaxFailedHosts: "0", MaxUnreachable: "1", Converge: "auto",
	}))
	resp := waitPhase(t, cs, id, 1, phBaking, 90*time.Second)
	phases := resp.GetRelease().GetPhases()
	cut := f.Host(phases[1].GetHosts()[0])
	waitServes(t, cut, v2)
	deadline := time.Unix(0, phases[1].GetBakeDeadlineUnixNano())
	into := deadline.Add(-time.Duration(phases[1].GetBakeMs())*time.Millisecond + 4*time.Second)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return !time.Now().Before(into), fmt.Sprintf("%s to 4s into phase 1's bake", time.Until(into).Round(time.Millisecond))
	})
	t.Logf("cutting %s (phase 1, baking, %s of bake left)", cut.Name, time.Until(deadline).Round(time.Millisecond))
	cutAt := time.Now()
	if err := cut.Cut(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, isolation+10*time.Second, func() (bool, string) {
		got, err := cut.ServedVersion()
		return err == nil && got == v1, fmt.Sprintf("%s (cut off) answers %q (%v), want %s", cut.Name, got, err, v1)
	})
	t.Logf("TIMING cut until %s answers %s by itself: %s (isolation_timeout %s)", cut.Name, v1,
		time.Since(cutAt).Round(time.Millisecond), isolation)

	// The release goes on without it: max_unreachable = 1 allows one.
	cs.WaitRelease(id, relSucceeded, 4*time.Minute)
	t.Logf("TIMING v2 start until succeeded without %s: %s", cut.Name, time.Since(start).Round(time.Millisecond))
	r, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release %s: %s (%s)", id, r.GetRelease().GetState(), r.GetRelease().GetReason())
	checkLeftAlone(t, cs, id, cut.Name)
	for _, h := range hosts {
		if h != cut {
			waitServes(t, h, v2)
		}
	}

	// Still cut off: the leader last heard "healthy, v2" from it, so it
	// cannot list it as drifted yet (logged as a user sees it).
	logDrift(t, cs, "still cut off, after the release succeeded")
	if got, err := cut.ServedVersion(); err != nil || got != v1 {
		t.Fatalf("%s answers %q (%v) while cut off, want %s", cut.Name, got, err, v1)
	}

	healed := time.Now()
	if err := cut.Heal(); err != nil {
		t.Fatal(err)
	}
	// Back, it reports the isolated revert: drifted until the leader
	// converges it (auto waits for 10 s of unbroken connection).
	conv := id + "-converge-1"
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		if d := driftOf(t, cs, cut.Name); len(d) == 1 {
			t.Logf("drift of %s after the heal: has %s, wants %s (%s): %s", cut.Name, d[0].GetHasVersion(), d[0].GetWantsVersion(), d[0].GetReleaseId(), d[0].GetReason())
			logDrift(t, cs, "healed, before convergence")
			return true, ""
		}
		if _, err := cs.Release(conv); err == nil {
			t.Logf("%s started before the drift could be read", conv)
			return true, ""
		}
		return false, cut.Name + " neither drifted nor converging"
	})
	waitConverged(t, cs, conv, cut.Name, 3*time.Minute)
	t.Logf("TIMING heal until the convergence release succeeded: %s", time.Since(healed).Round(time.Millisecond))
	for _, h := range hosts {
		waitServes(t, h, v2)
		checkServesActiveSlot(t, h)
	}
	waitNoDrift(t, cs, 30*time.Second)
	logDrift(t, cs, "after the heal and the convergence")
}

// TestPoweredOffHostConverges: a host of the last phase is powered off
// (halted) while the canary bakes; with max_unreachable = 1 the release
// succeeds without it. Booted again, it serves v1 and is listed drifted.
// manual: nothing moves it (checked for 15 s after it is connected, past
// the 10 s auto convergence would wait) until `rollwave release converge
// demo`; auto: the leader converges it by itself. Either way it ends on v2
// and nothing is drifted.
func TestPoweredOffHostConverges(t *testing.T) {
	for _, mode := range []string{"manual", "auto"} {
		t.Run(mode, func(t *testing.T) { poweredOffHostConverges(t, mode) })
	}
}

func poweredOffHostConverges(t *testing.T, mode string) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, rolloutHosts)
	const v1, v2 = "1.0.0", "2.0.0"
	deployDemo(t, f, cs, hosts, v1)

	start := time.Now()
	art := f.PublishDemo(v2, true)
	id := startRelease(t, cs, fleet.DemoSpecWith("demo-"+v2, v2, art, fleet.DemoSpecOptions{
		Bake: "8s", MaxFailedHosts: "0", MaxUnreachable: "1", Converge: mode,
	}))
	resp := waitPhase(t, cs, id, 0, phBaking, 90*time.Second)
	phases := resp.GetRelease().GetPhases()
	off := f.Host(phases[len(phases)-1].GetHosts()[0])
	t.Logf("powering off %s (phase %d) while phase 0 bakes", off.Name, len(phases)-1)
	if err := off.Stop(); err != nil {
		t.Fatal(err)
	}
	cs.WaitRelease(id, relSucceeded, 4*time.Minute)
	t.Logf("TIMING v2 start until succeeded without %s: %s", off.Name, time.Since(start).Round(time.Millisecond))
	r, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release %s: %s (%s)", id, r.GetRelease().GetState(), r.GetRelease().GetReason())
	checkLeftAlone(t, cs, id, off.Name)
	d := waitDrifted(t, cs, off.Name, v1, v2, id, 30*time.Second)
	t.Logf("drift of %s (powered off): %s", off.Name, d.GetReason())
	logDrift(t, cs, "powered off, after the release succeeded")

	booted := time.Now()
	if err := off.Start(); err != nil {
		t.Fatal(err)
	}
	if err := off.WaitActive(fleet.AgentUnit, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, cs, []*fleet.Host{off})
	connected := time.Now()
	t.Logf("TIMING boot until %s reconnected: %s", off.Name, connected.Sub(booted).Round(time.Millisecond))
	conv := id + "-converge-1"
	if mode == "manual" {
		waitServes(t, off, v1)
		waitDrifted(t, cs, off.Name, v1, v2, id, 30*time.Second)
		logDrift(t, cs, "booted again, connected, converge = manual")
		// Nothing converges it by itself: watched for 15 s of connection,
		// past the 10 s after which auto convergence would start.
		for time.Since(connected) < 15*time.Second {
			if _, err := cs.Release(conv); err == nil {
				t.Fatalf("convergence release %s exists with converge = manual", conv)
			}
			if got, err := off.ServedVersion(); err != nil || got != v1 {
				t.Fatalf("%s answers %q (%v) with converge = manual, want %s until converged", off.Name, got, err, v1)
			}
			time.Sleep(500 * time.Millisecond)
		}
		out, errOut, err := cs.CLI("release", "converge", fleet.DemoApp, "-reason", "host powered back on")
		if err != nil {
			t.Fatalf("rollwave release converge %s: %v: %s", fleet.DemoApp, err, errOut)
		}
		t.Logf("rollwave release converge %s:\n%s", fleet.DemoApp, strings.TrimRight(out, "\n"))
	}
	waitConverged(t, cs, conv, off.Name, 3*time.Minute)
	t.Logf("TIMING boot until converged (%s): %s", mode, time.Since(booted).Round(time.Millisecond))
	for _, h := range hosts {
		waitServes(t, h, v2)
		checkServesActiveSlot(t, h)
	}
	waitNoDrift(t, cs, 30*time.Second)
	logDrift(t, cs, "after convergence ("+mode+")")
}
