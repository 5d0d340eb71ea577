//go:build e2e

package integration

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestRegionLinkCutFailsLocal (issue 18 item 3, real hosts): five hosts
// in two regions — eu (h1, h2, h3 in cell eu-1) and us (h4, h5 in cell
// us-1), each agent's region set in its agent.hcl. v2 runs with
// phases.parallel_regions_after = 1 and rollback.on_failure =
// "fail_local": the canary h1 first, then eu {h2, h3} and us {h4, h5}
// side by side. 2 s into us's bake both us hosts are cut off (the whole
// region's link): they revert to v1 on their own after isolation_timeout,
// the leader counts them unreachable, us's phase fails on max_unreachable
// and region us alone rolls back; eu's phase is verified and eu
// succeeds. After the heal us reports its reverts, it is rolled_back, and
// the release ends partially_succeeded: eu serves v2, us v1, and no eu
// host was ever ordered to revert.
func TestRegionLinkCutFailsLocal(t *testing.T) {
	timed(t)
	requireEngine(t)
	f := fleet.New(t, fleet.Options{})
	requireDeb(t, f)
	cs := f.StartCoordinators(3)
	hosts := f.Boot(5)
	region := map[string]string{"h1": "eu", "h2": "eu", "h3": "eu", "h4": "us", "h5": "us"}
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.InstallAgent(h, region[h.Name]+"-1", fleet.AgentOptions{Region: region[h.Name]})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, cs, hosts)
	const v1, v2 = "1.0.0", "2.0.0"
	const isolation = 5 * time.Second
	deployDemo(t, f, cs, hosts, v1)

	start := time.Now()
	spec := fleet.DemoSpecWith("demo-"+v2, v2, f.PublishDemo(v2, true), fleet.DemoSpecOptions{
		Bake: "12s", Decay: "1", IsolationTimeout: isolation.String(), MaxFailedHosts: "0", MaxUnreachable: "0",
	})
	for old, repl := range map[string]string{
		"  bake {": "  phases {\n    parallel_regions_after = 1\n  }\n\n  bake {",
		fmt.Sprintf("isolation_timeout = %q", isolation.String()): fmt.Sprintf("isolation_timeout = %q\n    on_failure        = \"fail_local\"", isolation.String()),
	} {
		if !strings.Contains(spec, old) {
			t.Fatalf("demo spec has no %q:\n%s", old, spec)
		}
		spec = strings.Replace(spec, old, repl, 1)
	}
	id := startRelease(t, cs, spec)

	// Phase 0 is shared (h1); then each region's own phases, in region
	// name order: eu's {h2, h3} is phase 1, us's {h4, h5} phase 2.
	resp := waitPhase(t, cs, id, 2, phBaking, 2*time.Minute)
	r := resp.GetRelease()
	want := []struct {
		region string
		hosts  []string
	}{{"", []string{"h1"}}, {"eu", []string{"h2", "h3"}}, {"us", []string{"h4", "h5"}}}
	if len(r.GetPhases()) != len(want) {
		t.Fatalf("phases = %v", r.GetPhases())
	}
	for i, w := range want {
		if p := r.GetPhases()[i]; p.GetRegion() != w.region || !slices.Equal(p.GetHosts(), w.hosts) {
			t.Fatalf("phase %d: region %q hosts %v, want %q %v", i, p.GetRegion(), p.GetHosts(), w.region, w.hosts)
		}
	}
	us := []*fleet.Host{f.Host("h4"), f.Host("h5")}
	eu := []*fleet.Host{f.Host("h1"), f.Host("h2"), f.Host("h3")}
	for _, h := range us {
		waitServes(t, h, v2)
	}
	usPhase := r.GetPhases()[2]
	deadline := time.Unix(0, usPhase.GetBakeDeadlineUnixNano())
	into := deadline.Add(-time.Duration(usPhase.GetBakeMs())*time.Millisecond + 2*time.Second)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return !time.Now().Before(into), fmt.Sprintf("%s to 2s into us's bake", time.Until(into).Round(time.Millisecond))
	})
	t.Logf("cutting region us (h4, h5), %s of its bake left", time.Until(deadline).Round(time.Millisecond))
	cutAt := time.Now()
	for _, h := range us {
		if err := h.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	healed := false
	heal := func() {
		if healed {
			return
		}
		healed = true
		for _, h := range us {
			if err := h.Heal(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(heal)
	for _, h := range us {
		testutil.WaitFor(t, isolation+15*time.Second, func() (bool, string) {
			got, err := h.ServedVersion()
			return err == nil && got == v1, fmt.Sprintf("%s (cut off) answers %q (%v), want %s", h.Name, got, err, v1)
		})
	}
	t.Logf("TIMING region cut until both us hosts answer %s by themselves: %s (isolation_timeout %s)", v1, time.Since(cutAt).Round(time.Millisecond), isolation)

	// The leader decides us alone: its phase fails and only us rolls back.
	regionState := func(r *rollwavev1.Release, name string) *rollwavev1.RegionProgress {
		for _, g := range r.GetRegions() {
			if g.GetRegion() == name {
				return g
			}
		}
		return nil
	}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		resp, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		g := regionState(resp.GetRelease(), "us")
		return g.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_ROLLING_BACK, fmt.Sprintf("release %s, us %v", resp.GetRelease().GetState(), g)
	})
	t.Logf("TIMING region cut until us rolls back (fail_local): %s", time.Since(cutAt).Round(time.Millisecond))
	// eu goes on while us is still cut off.
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		resp, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		g := regionState(resp.GetRelease(), "eu")
		return g.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, fmt.Sprintf("eu %v", g)
	})
	heal()
	cs.WaitRelease(id, rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED, 2*time.Minute)
	t.Logf("TIMING region-parallel release with a region cut, start to partially_succeeded: %s", time.Since(start).Round(time.Millisecond))

	out, errOut, err := cs.CLI("release", "status", id)
	if err != nil {
		t.Fatalf("rollwave release status: %v: %s", err, errOut)
	}
	t.Logf("rollwave release status %s:\n%s", id, out)
	for _, line := range []string{"eu", "us"} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) > 1 && f[0] == line {
				found = true
				if wantState := map[string]string{"eu": "succeeded", "us": "rolled_back"}[line]; f[1] != wantState {
					t.Errorf("status line %q: want state %s", l, wantState)
				}
			}
		}
		if !found {
			t.Errorf("release status has no line for region %s", line)
		}
	}
	for _, h := range eu {
		waitServes(t, h, v2)
	}
	for _, h := range us {
		waitServes(t, h, v1)
	}
	evs := logEvents(t, cs, id, "phase.failed", "gate.failed", "region.started", "region.rolling_back", "region.rolled_back", "region.succeeded",
		"revert.ordered", "host.unreachable", "release.partially_succeeded")
	for _, e := range evs {
		switch e.GetKind() {
		case "revert.ordered":
			for _, h := range strings.Split(e.GetEvidence()["hosts"], ",") {
				if region[h] != "us" {
					t.Errorf("host %s of %s was ordered to revert: %s", h, region[h], e.GetMessage())
				}
			}
		case "phase.failed":
			if e.GetRegion() != "us" {
				t.Errorf("a phase outside us failed: %s", e.GetMessage())
			}
		}
	}
}
