//go:build e2e

package integration

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// The control-plane-loss scenarios bake two canary hosts (phases.canary =
// 2) for cpLossBake, cut the whole control plane cpLossOutage into that
// bake and leave it down for cpLossOutage. isolation_timeout is a third of
// the outage, so without the control-plane-loss policy every baking host
// would revert alone long before the coordinators come back; the bake is
// long enough that the gates are read after the coordinators are back and
// every agent reconnected.
const (
	cpLossHosts     = 3
	cpLossBake      = 80 * time.Second
	cpLossOutage    = 30 * time.Second
	cpLossIsolation = 10 * time.Second
)

// cpLossSpec is the demo release with two canary hosts, a long first bake
// (later phases bake a tenth of it) and the given control-plane-loss
// policy ("" keeps the default).
func cpLossSpec(name, version string, f *fleet.Fleet, policy string) string {
	art := f.PublishDemo(version, true)
	s := fleet.DemoSpecWith(name, version, art, fleet.DemoSpecOptions{
		Bake: cpLossBake.String(), Decay: "0.1", IsolationTimeout: cpLossIsolation.String(),
	})
	s = strings.Replace(s, "  bake {", "  phases {\n    canary = 2\n  }\n\n  bake {", 1)
	if policy != "" {
		iso := fmt.Sprintf("isolation_timeout = %q", cpLossIsolation.String())
		s = strings.Replace(s, iso, iso+fmt.Sprintf("\n    on_control_plane_loss = %q", policy), 1)
	}
	return s
}

// servePoller polls each host's traffic port until stopped and records
// every answer that is not the wanted version (or no answer).
type servePoller struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	bad  []string
	n    map[string]int
}

func pollServes(hosts []*fleet.Host, want string) *servePoller {
	p := &servePoller{stop: make(chan struct{}), n: map[string]int{}}
	for _, h := range hosts {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-p.stop:
					return
				default:
				}
				got, err := h.ServedVersion()
				p.mu.Lock()
				p.n[h.Name]++
				if err != nil || got != want {
					p.bad = append(p.bad, fmt.Sprintf("%s %s: %q (%v), want %s", time.Now().UTC().Format("15:04:05.000"), h.Name, got, err, want))
				}
				p.mu.Unlock()
				select {
				case <-p.stop:
					return
				case <-time.After(100 * time.Millisecond): // polling cadence, not synchronisation
				}
			}
		}()
	}
	return p
}

// done stops the poller and returns the bad answers and the number of
// polls per host.
func (p *servePoller) done() ([]string, map[string]int) {
	close(p.stop)
	p.wg.Wait()
	return p.bad, p.n
}

// controlPlaneOutage stops (SIGTERM, as `systemctl stop` does) or kills
// (SIGKILL) every coordinator, keeps them down for cpLossOutage, starts
// them again on the same addresses and data dirs, and checks that every
// agent has a session with the new leader within 10 s of it being seen.
func controlPlaneOutage(t *testing.T, cs *fleet.Coordinators, hosts []*fleet.Host, mode string) {
	t.Helper()
	down := time.Now()
	for _, c := range cs.Nodes() {
		if mode == "stop" {
			c.Stop()
		} else {
			c.Kill()
		}
	}
	t.Logf("TIMING %s of all coordinators took %s", mode, time.Since(down).Round(time.Millisecond))
	// The outage itself (the scenario's 30 s), not a synchronisation.
	time.Sleep(cpLossOutage)
	for _, c := range cs.Nodes() {
		c.Restart()
	}
	leader := cs.WaitLeader(60 * time.Second)
	elected := time.Now()
	cs.WaitConnected(hosts, 10*time.Second)
	t.Logf("TIMING %s: coordinators down %s; every agent connected %s after the new leader %s was seen",
		mode, elected.Sub(down).Round(time.Millisecond), time.Since(elected).Round(time.Millisecond), leader.Name)
}

// waitIntoBake waits until the given phase has baked for `into`, per the
// deadline stored in raft, and returns the deadline.
func waitIntoBake(t *testing.T, p *rollwavev1.Phase, into time.Duration) time.Time {
	t.Helper()
	deadline := time.Unix(0, p.GetBakeDeadlineUnixNano())
	at := deadline.Add(-time.Duration(p.GetBakeMs())*time.Millisecond + into)
	testutil.WaitFor(t, 2*into+10*time.Second, func() (bool, string) {
		return !time.Now().Before(at), fmt.Sprintf("%s to %s into phase %d's bake", time.Until(at).Round(time.Millisecond), into, p.GetIndex())
	})
	return deadline
}

func journals(t *testing.T, hosts []*fleet.Host) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range hosts {
				t.Logf("--- %s agent journal:\n%s", h.Name, h.Journal(fleet.AgentUnit, 80))
			}
		}
	})
}

// TestControlPlaneLossHold: a release bakes on two canary hosts; every
// coordinator is stopped (then, in a second release, killed) in the middle
// of the bake and started again 30 s later. With the default
// on_control_plane_loss = "hold" each baking host keeps serving the new
// version the whole time (its traffic port is polled throughout), every
// agent is connected again within 10 s of the new leader, each baking
// host's host.held_control_plane_down event is in `release events`, and
// the release goes on and succeeds. Before the policy, the agents'
// isolation watchdog reverted every baking host isolation_timeout after
// the outage began.
func TestControlPlaneLossHold(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, cpLossHosts)
	journals(t, hosts)
	deployDemo(t, f, cs, hosts, "1.0.0")

	for _, c := range []struct{ mode, version string }{{"stop", "2.0.0"}, {"kill", "3.0.0"}} {
		start := time.Now()
		id := startRelease(t, cs, cpLossSpec("demo-"+c.version, c.version, f, ""))
		resp := waitPhase(t, cs, id, 0, phBaking, 2*time.Minute)
		p0 := resp.GetRelease().GetPhases()[0]
		var baking []*fleet.Host
		for _, name := range p0.GetHosts() {
			baking = append(baking, f.Host(name))
		}
		if len(baking) < 2 {
			t.Fatalf("phase 0 bakes on %v, want two canary hosts", p0.GetHosts())
		}
		for _, h := range baking {
			waitServes(t, h, c.version)
		}
		deadline := waitIntoBake(t, p0, 5*time.Second)
		t.Logf("%s: cutting the control plane with %s of the bake of %v left", c.mode, time.Until(deadline).Round(time.Millisecond), p0.GetHosts())

		poll := pollServes(baking, c.version)
		controlPlaneOutage(t, cs, hosts, c.mode)
		bad, n := poll.done()
		t.Logf("%s: polled the baking hosts' traffic ports %v times during the outage", c.mode, n)
		for _, b := range bad {
			t.Errorf("%s outage: baking host answered %s", c.mode, b)
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: the outage outlasted the bake (deadline %s); lengthen cpLossBake", c.mode, deadline.Format(time.RFC3339))
		}

		// Each baking host tells what it did while alone, once contact is back.
		testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
			evs, err := cs.Events(id)
			if err != nil {
				return false, err.Error()
			}
			held := map[string]string{}
			for _, e := range evs {
				if e.GetKind() == "host.held_control_plane_down" {
					held[e.GetHost()] = e.GetMessage()
				}
			}
			for _, h := range baking {
				if held[h.Name] == "" {
					return false, fmt.Sprintf("no host.held_control_plane_down event of %s yet (have %v)", h.Name, held)
				}
			}
			for h, m := range held {
				t.Logf("%s: host.held_control_plane_down %s: %s", c.mode, h, m)
			}
			return true, ""
		})

		cs.WaitRelease(id, relSucceeded, 4*time.Minute)
		t.Logf("TIMING %s: release %s start until succeeded across the outage: %s", c.mode, c.version, time.Since(start).Round(time.Millisecond))
		resp, err := cs.Release(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			as := assignmentsOf(resp, h.Name)
			if len(as) != 1 || as[0].GetState() != asFinalized {
				t.Errorf("%s: assignments of %s: %v, want one finalized", h.Name, id, as)
			}
			waitServes(t, h, c.version)
		}
		// What the operator sees: the hold in `rollwave hosts`.
		out, errOut, err := cs.CLI("hosts")
		if err != nil {
			t.Fatalf("rollwave hosts: %v: %s", err, errOut)
		}
		t.Logf("rollwave hosts:\n%s", out)
		for _, h := range baking {
			if !hostLineHas(out, h.Name, "held_control_plane_down") {
				t.Errorf("rollwave hosts does not show %s held through the outage:\n%s", h.Name, out)
			}
		}
	}
}

// TestControlPlaneLossRevert: the same outage (SIGKILL of every
// coordinator) with on_control_plane_loss = "revert": the baking hosts
// revert by themselves once isolation_timeout passed, before the
// coordinators are back; when they are, the assignments are
// reverted_isolated with the agents' reason naming the policy, and the
// release rolls back saying why.
func TestControlPlaneLossRevert(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, cpLossHosts)
	journals(t, hosts)
	const v1, v2 = "1.0.0", "2.0.0"
	deployDemo(t, f, cs, hosts, v1)

	start := time.Now()
	id := startRelease(t, cs, cpLossSpec("demo-"+v2, v2, f, "revert"))
	resp := waitPhase(t, cs, id, 0, phBaking, 2*time.Minute)
	p0 := resp.GetRelease().GetPhases()[0]
	var baking []*fleet.Host
	for _, name := range p0.GetHosts() {
		baking = append(baking, f.Host(name))
	}
	for _, h := range baking {
		waitServes(t, h, v2)
	}
	waitIntoBake(t, p0, 5*time.Second)

	down := time.Now()
	for _, c := range cs.Nodes() {
		c.Kill()
	}
	// Each baking host reverts alone while the control plane is down.
	for _, h := range baking {
		waitServes(t, h, v1)
		t.Logf("TIMING revert: %s serves %s %s after the coordinators were killed (isolation_timeout %s)",
			h.Name, v1, time.Since(down).Round(time.Millisecond), cpLossIsolation)
	}
	if rest := cpLossOutage - time.Since(down); rest > 0 {
		time.Sleep(rest) // the rest of the scenario's 30 s outage
	}
	for _, c := range cs.Nodes() {
		c.Restart()
	}
	leader := cs.WaitLeader(60 * time.Second)
	elected := time.Now()
	cs.WaitConnected(hosts, 10*time.Second)
	t.Logf("TIMING revert: every agent connected %s after the new leader %s", time.Since(elected).Round(time.Millisecond), leader.Name)

	cs.WaitRelease(id, relRolledBack, 4*time.Minute)
	t.Logf("TIMING revert: release start until rolled_back: %s", time.Since(start).Round(time.Millisecond))
	resp, err := cs.Release(id)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetRelease()
	t.Logf("release %s: %s (%s); phase 0 %s (%s)", id, r.GetState(), r.GetReason(), r.GetPhases()[0].GetState(), r.GetPhases()[0].GetReason())
	for _, h := range baking {
		as := assignmentsOf(resp, h.Name)
		if len(as) != 1 || as[0].GetState() != asRevertedIsolated {
			t.Errorf("%s: assignments %v, want one reverted_isolated", h.Name, as)
			continue
		}
		if why := as[0].GetReason(); !strings.Contains(why, "on_control_plane_loss = revert") {
			t.Errorf("%s: reverted_isolated reason %q does not name on_control_plane_loss = revert", h.Name, why)
		}
	}
	evs, err := cs.Events(id)
	if err != nil {
		t.Fatal(err)
	}
	var why []string
	for _, e := range evs {
		text := e.GetMessage()
		for k, v := range e.GetEvidence() {
			text += " " + k + "=" + v
		}
		if strings.Contains(text, "on_control_plane_loss = revert") {
			why = append(why, e.GetKind()+": "+text)
		}
	}
	if len(why) == 0 {
		t.Errorf("no event of release %s names on_control_plane_loss = revert", id)
	}
	for _, w := range why {
		t.Logf("event %s", w)
	}
	out, errOut, err := cs.CLI("hosts")
	if err != nil {
		t.Fatalf("rollwave hosts: %v: %s", err, errOut)
	}
	t.Logf("rollwave hosts:\n%s", out)
	for _, h := range baking {
		if !hostLineHas(out, h.Name, "reverted_isolated") {
			t.Errorf("rollwave hosts does not show %s reverted isolated:\n%s", h.Name, out)
		}
	}
	for _, h := range hosts {
		waitServes(t, h, v1)
		checkServesActiveSlot(t, h)
	}
}

// hostLineHas reports whether a line of a table starting with host
// contains s.
func hostLineHas(table, host, s string) bool {
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == host && strings.Contains(line, s) {
			return true
		}
	}
	return false
}
