//go:build e2e

package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestRaftLossyLinkCausesNoElection (issue 13 item 9, real hosts): the
// coordinators run in network namespaces of their own, so raft between
// them crosses veths. A follower's veth (both ends) is first made slow
// and lossy (tc tbf: a 256 kbit/s link that queues up to 200 ms, then
// drops; this machine's kernel has no sch_netem, so netem cannot be
// used), then cut in blackouts shorter than the heartbeat timeout, each
// starting with the follower's raft connections reset (ss -K) while the
// leader is alive: the early campaign's probe then runs over the dead
// link. No server may campaign
// (no "entering candidate state" in any log) and every server names the
// same leader. Then, link healthy, SIGKILL the leader: the followers see
// its port refuse and elect a new leader well before the 4 s heartbeat
// timeout would.
func TestRaftLossyLinkCausesNoElection(t *testing.T) {
	timed(t)
	const (
		heartbeat = 4 * time.Second
		blackout  = 1500 * time.Millisecond
		rounds    = 5
	)
	f := fleet.New(t, fleet.Options{})
	cs := f.StartCoordinatorsWith(3, fleet.CoordinatorOptions{
		OwnNetns: true,
		Config: fmt.Sprintf("raft {\n  heartbeat_timeout = %q\n  election_timeout = %q\n  leader_lease_timeout = \"500ms\"\n}\n",
			heartbeat, heartbeat),
	})
	leader := cs.WaitLeader(60 * time.Second)
	var victim *fleet.Coordinator
	for _, c := range cs.Nodes() {
		if c != leader {
			victim = c
			break
		}
	}
	before := map[string]int{}
	for _, c := range cs.Nodes() {
		before[c.Name] = len(c.Log())
	}
	since := func(c *fleet.Coordinator) string { return c.Log()[before[c.Name]:] }
	t.Cleanup(func() { _ = victim.Heal(); _ = victim.Unshape() })

	// A slow, lossy link, with the raft connections reset now and then.
	if err := victim.Shape("tbf", "rate", "256kbit", "burst", "4kb", "latency", "200ms"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's link: tbf 256 kbit/s, 200 ms queue, for 15 s (leader %s)", victim.Name, leader.Name)
	for i := 0; i < 5; i++ {
		if _, err := victim.ResetRaftConns(); err != nil {
			t.Fatal(err)
		}
		<-time.After(3 * time.Second) // the fault schedule
	}
	// Blackouts: the link cut for 1.5 s, connections reset at the start.
	for i := 0; i < rounds; i++ {
		if err := victim.Cut(); err != nil {
			t.Fatal(err)
		}
		if _, err := victim.ResetRaftConns(); err != nil {
			t.Fatal(err)
		}
		<-time.After(blackout)
		if err := victim.Heal(); err != nil {
			t.Fatal(err)
		}
		<-time.After(3 * time.Second)
	}
	if err := victim.Unshape(); err != nil {
		t.Fatal(err)
	}
	if got := cs.WaitLeader(30 * time.Second); got != leader {
		t.Errorf("leader changed from %s to %s on a lossy link", leader.Name, got.Name)
	}
	for _, c := range cs.Nodes() {
		log := since(c)
		if n := strings.Count(log, "entering candidate state"); n > 0 {
			t.Errorf("%s campaigned %d times while %s's link was lossy:\n%s", c.Name, n, victim.Name, fleet.Tail(log, 40))
		}
	}
	vlog := since(victim)
	lost := strings.Count(vlog, "did not answer in time; not campaigning early")
	t.Logf("TIMING raft lossy link: %s probed the live leader over a lost link %d times and did not campaign", victim.Name, lost)
	if lost == 0 {
		t.Errorf("no probe ran over the blacked-out link: the faults did not exercise the early campaign\n%s", fleet.Tail(vlog, 40))
	}

	// A real death still fails over early.
	for _, c := range cs.Nodes() {
		before[c.Name] = len(c.Log())
	}
	killed := time.Now()
	leader.Kill()
	nl := cs.WaitLeader(30 * time.Second)
	took := time.Since(killed)
	t.Logf("TIMING raft lossy link: %s leads %s after %s was SIGKILLed (heartbeat_timeout %s)", nl.Name, took.Round(time.Millisecond), leader.Name, heartbeat)
	early := 0
	for _, c := range cs.Nodes() {
		if c != leader {
			early += strings.Count(since(c), "campaigning early")
		}
	}
	if early == 0 {
		t.Errorf("no follower campaigned early after the leader was killed")
	}
	if took >= heartbeat {
		t.Errorf("new leader %s after the kill: no earlier than raft's own %s heartbeat timeout", took.Round(time.Millisecond), heartbeat)
	}
}
