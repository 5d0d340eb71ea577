//go:build e2e

package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// hostView returns connected and liveness of host as the coordinators list
// it.
func hostView(cs *fleet.Coordinators, host string) (connected bool, liveness string, err error) {
	views, err := cs.Hosts()
	if err != nil {
		return false, "", err
	}
	for _, v := range views {
		if v.GetHost().GetId() == host {
			return v.GetConnected(), v.GetLiveness(), nil
		}
	}
	return false, "", fmt.Errorf("%s not listed", host)
}

// TestLinkCut: cutting a host's link makes the coordinators lose its
// session and gossip mark it not alive, while systemd and the agent keep
// running on it; healing brings it back connected and alive.
func TestLinkCut(t *testing.T) {
	timed(t)
	_, cs, hosts := bootFleet(t, 3)
	h := hosts[1]
	cut := time.Now()
	if err := h.Cut(); err != nil {
		t.Fatal(err)
	}
	var sessionGone, gossipGone time.Duration
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		connected, liveness, err := hostView(cs, h.Name)
		if err != nil {
			return false, err.Error()
		}
		if !connected && sessionGone == 0 {
			sessionGone = time.Since(cut)
		}
		if liveness != "alive" && gossipGone == 0 {
			gossipGone = time.Since(cut)
		}
		return !connected && liveness != "alive", fmt.Sprintf("%s: connected=%v liveness=%s", h.Name, connected, liveness)
	})
	t.Logf("TIMING after the cut: session gone %s, gossip not alive %s", sessionGone.Round(time.Millisecond), gossipGone.Round(time.Millisecond))
	t.Logf("TIMING cut until coordinators see %s gone: %s", h.Name, time.Since(cut).Round(time.Millisecond))
	if state := h.IsActive(fleet.AgentUnit); state != "active" {
		t.Errorf("%s: agent is %q while cut off, want active", h.Name, state)
	}

	healed := time.Now()
	if err := h.Heal(); err != nil {
		t.Fatal(err)
	}
	var sessionBack, gossipBack time.Duration
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		connected, liveness, err := hostView(cs, h.Name)
		if err != nil {
			return false, err.Error()
		}
		if connected && sessionBack == 0 {
			sessionBack = time.Since(healed)
		}
		if liveness == "alive" && gossipBack == 0 {
			gossipBack = time.Since(healed)
		}
		return connected && liveness == "alive", fmt.Sprintf("%s: connected=%v liveness=%s", h.Name, connected, liveness)
	})
	t.Logf("TIMING after the heal: session back %s, gossip alive %s", sessionBack.Round(time.Millisecond), gossipBack.Round(time.Millisecond))
	t.Logf("TIMING heal until %s connected and alive: %s", h.Name, time.Since(healed).Round(time.Millisecond))
	waitConnected(t, cs, hosts)
}

// TestCoordinatorLeaderKilled: SIGKILL the raft leader; the other two
// elect a new one and every agent reconnects to it; the killed server
// restarts from its data dir and rejoins.
func TestCoordinatorLeaderKilled(t *testing.T) {
	timed(t)
	_, cs, hosts := bootFleet(t, 3)
	old := cs.WaitLeader(30 * time.Second)
	killed := time.Now()
	old.Kill()
	leader := cs.WaitLeader(60 * time.Second)
	if leader == old {
		t.Fatalf("leader is still the killed %s", old.Name)
	}
	t.Logf("TIMING new leader %s after killing %s: %s", leader.Name, old.Name, time.Since(killed).Round(time.Millisecond))
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		views, err := cs.Hosts()
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, v := range views {
			if v.GetConnected() {
				n++
			}
		}
		return n == len(hosts), fmt.Sprintf("%d of %d hosts connected to the new leader", n, len(hosts))
	})
	t.Logf("TIMING agents reconnected after killing the leader: %s", time.Since(killed).Round(time.Millisecond))

	old.Restart()
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		st, err := cs.Status(old)
		if err != nil {
			return false, err.Error()
		}
		return st.GetLeaderId() != "", fmt.Sprintf("%s: raft state %s, leader %q", old.Name, st.GetRaftState(), st.GetLeaderId())
	})
	cs.WaitLeader(30 * time.Second)
	waitConnected(t, cs, hosts)
}
