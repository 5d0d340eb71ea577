package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
)

// reconnectAfterLeader is the acceptance bound: every agent has a session
// with the new leader within this long of the leader's election.
const reconnectAfterLeader = 10 * time.Second

// controlPlane is a 3-coordinator cluster with agents joined to the first
// coordinator's gossip address (the address an operator configures).
type controlPlane struct {
	t      *testing.T
	c      *coordtest.Cluster
	agents []*agenttest.Agent
	join   string
}

func newControlPlane(t *testing.T, hosts int) *controlPlane {
	c := coordtest.NewCluster(t, 3)
	cp := &controlPlane{t: t, c: c, join: c.Configs[0].GossipAddr}
	for i := range hosts {
		name := fmt.Sprintf("h%d", i+1)
		cp.agents = append(cp.agents, agenttest.Start(t, name, "a", agenttest.Options{Join: cp.join}))
	}
	c.Leader(15 * time.Second)
	cp.waitAllOnCurrentLeader(15 * time.Second)
	return cp
}

// waitAllOnCurrentLeader is waitAllOn against whichever coordinator leads
// at each poll: on a loaded machine leadership may move while the agents
// first connect, and the setup only needs them on the leader there is.
func (cp *controlPlane) waitAllOnCurrentLeader(within time.Duration) {
	cp.t.Helper()
	cp.waitAllOnEach(within, func() *coordinator.Server {
		for _, s := range cp.c.Running() {
			if s.IsLeader() {
				return s
			}
		}
		return nil
	})
}

// waitAllOn waits until every agent has a session with leader, and the
// leader agrees.
func (cp *controlPlane) waitAllOn(leader *coordinator.Server, within time.Duration) {
	cp.t.Helper()
	cp.waitAllOnEach(within, func() *coordinator.Server { return leader })
}

// waitAllOnEach waits until every agent has a session with the server
// leader returns at that poll, and that server agrees.
func (cp *controlPlane) waitAllOnEach(within time.Duration, leader func() *coordinator.Server) {
	cp.t.Helper()
	testutil.WaitFor(cp.t, within, func() (bool, string) {
		l := leader()
		if l == nil {
			return false, "no leader"
		}
		var seen []string
		all := true
		for _, a := range cp.agents {
			on := a.Connected() && a.LeaderID() == l.NodeID() && l.AgentConnected(a.Name)
			seen = append(seen, fmt.Sprintf("%s:connected=%v,leader=%q,searching=%v", a.Name, a.Connected(), a.LeaderID(), a.Searching()))
			all = all && on
		}
		return all, "want every agent on " + l.NodeID() + ": " + strings.Join(seen, " ")
	})
}

// stopAll stops every coordinator and waits until every agent has lost
// its session and its gossip lists no live coordinator any more.
func (cp *controlPlane) stopAll() {
	cp.t.Helper()
	for i := range cp.c.Servers {
		cp.c.Kill(i)
	}
	cp.waitSearching()
}

func (cp *controlPlane) waitSearching() {
	cp.t.Helper()
	testutil.WaitFor(cp.t, 20*time.Second, func() (bool, string) {
		var seen []string
		all := true
		for _, a := range cp.agents {
			seen = append(seen, fmt.Sprintf("%s:connected=%v,searching=%v", a.Name, a.Connected(), a.Searching()))
			all = all && !a.Connected() && a.Searching()
		}
		return all, "want every agent cut off and searching: " + strings.Join(seen, " ")
	})
}

// startAll starts every coordinator again on its old addresses and data
// dir, and returns the new leader and when it was seen.
func (cp *controlPlane) startAll() (*coordinator.Server, time.Time) {
	cp.t.Helper()
	for i := range cp.c.Servers {
		cp.c.Start(i)
	}
	leader := cp.c.Leader(20 * time.Second)
	return leader, time.Now()
}

// Every coordinator stopped, then started again on the same addresses and
// data dirs: the agents (whose gossip has declared every coordinator dead)
// find them again and all have a session with the new leader within 10 s
// of its election. Before, pickCoordinator found no live server in gossip
// and the agents waited forever for an announcement they could not hear.
func TestAgentsReconnectAfterEveryCoordinatorRestarted(t *testing.T) {
	cp := newControlPlane(t, 4)
	cp.stopAll()
	leader, elected := cp.startAll()
	cp.waitAllOn(leader, reconnectAfterLeader)
	t.Logf("all %d agents on the new leader %s %s after its election", len(cp.agents), leader.NodeID(), time.Since(elected).Round(time.Millisecond))
}

// The same, but the agents themselves are restarted while every
// coordinator is down: they start with no live gossip peer at all, run
// anyway (they knew coordinators before: their data dir says so), and find
// the coordinators when those come back. Before, Run failed its start-up
// join and the agent exited.
func TestRestartedAgentsReconnectAfterEveryCoordinatorRestarted(t *testing.T) {
	cp := newControlPlane(t, 4)
	cp.stopAll()
	for i, a := range cp.agents {
		a.Stop()
		cp.agents[i] = agenttest.Start(t, a.Name, a.Cell, agenttest.Options{Join: cp.join, DataDir: a.DataDir})
	}
	// Restarted with nobody to join, each agent runs and searches.
	cp.waitSearching()
	leader, elected := cp.startAll()
	cp.waitAllOn(leader, reconnectAfterLeader)
	t.Logf("all %d restarted agents on the new leader %s %s after its election", len(cp.agents), leader.NodeID(), time.Since(elected).Round(time.Millisecond))
}
