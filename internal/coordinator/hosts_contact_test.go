package coordinator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestListHostsShowsTheLeadersLiveLastContact: raft's copy of a host's
// last contact is written every 30 s; 'rollwave hosts' shows what the
// leader heard last instead, both while the agent is connected and after
// its session ended.
func TestListHostsShowsTheLeadersLiveLastContact(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	s := c.Leader(30 * time.Second)
	a := agenttest.Start(t, "h1", "edge", agenttest.Options{Join: s.GossipAddr()})
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		return s.AgentConnected("h1") && s.FSM().State().Host("h1") != nil, "h1 not connected and registered"
	})
	stored := func() time.Time { return time.Unix(0, s.FSM().State().Host("h1").GetLastContactUnixNano()) }
	listed := func() (time.Time, error) {
		resp, err := c.Client(s).ListHosts(ctx(t), &rollwavev1.ListHostsRequest{})
		if err != nil {
			return time.Time{}, err
		}
		for _, v := range resp.GetHosts() {
			if v.GetHost().GetId() == "h1" {
				return time.Unix(0, v.GetHost().GetLastContactUnixNano()), nil
			}
		}
		return time.Time{}, fmt.Errorf("h1 not listed in %v", resp.GetHosts())
	}

	// Connected, heartbeating every 200 ms: once raft's copy is 3 s old
	// (it is rewritten only every 30 s), the listing is under 2 s old.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		at, err := listed()
		if err != nil {
			return false, err.Error()
		}
		st := stored()
		return time.Since(st) > 3*time.Second && time.Since(at) < 2*time.Second,
			fmt.Sprintf("listed last contact %s ago, raft's %s ago", time.Since(at), time.Since(st))
	})

	// After the session ended: the last message of that session, not
	// raft's older copy.
	a.Stop()
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		return !s.AgentConnected("h1"), "h1 still connected"
	})
	stopped := time.Now()
	at, err := listed()
	if err != nil {
		t.Fatal(err)
	}
	if st := stored(); !at.After(st) || at.After(stopped) {
		t.Fatalf("after the session ended, listed last contact %s, raft's %s, stopped at %s; want between raft's and the stop",
			at.Format(time.StampMilli), st.Format(time.StampMilli), stopped.Format(time.StampMilli))
	}
}

// TestListHostsMetricsFromTheLeader: heartbeats live in the leader's
// memory only; ListHosts with metrics = true shows a host's latest one
// whichever coordinator is asked (a follower forwards), only when asked,
// and host = ID lists that host alone.
func TestListHostsMetricsFromTheLeader(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(20 * time.Second)
	agenttest.Start(t, "h1", "edge", agenttest.Options{Join: leader.GossipAddr()})
	agenttest.Start(t, "h2", "edge", agenttest.Options{Join: leader.GossipAddr()})
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		l := c.Leader(20 * time.Second)
		hb, _, ok := l.AgentHeartbeat("h1")
		return ok && hb != nil && l.FSM().State().Host("h2") != nil, "h1 has sent no heartbeat to the leader, or h2 is not registered"
	})
	for _, s := range c.Running() {
		testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
			resp, err := c.Client(s).ListHosts(ctx(t), &rollwavev1.ListHostsRequest{Host: "h1", Metrics: true})
			if err != nil {
				return false, err.Error()
			}
			if len(resp.GetHosts()) != 1 || resp.GetHosts()[0].GetHost().GetId() != "h1" {
				return false, fmt.Sprintf("host = h1 listed %v", resp.GetHosts())
			}
			m := resp.GetHosts()[0].GetMetrics()
			if m == nil || m.GetHost() == nil {
				return false, fmt.Sprintf("no metrics for h1 from %s: %v", s.NodeID(), resp.GetHosts()[0])
			}
			if age := time.Since(time.Unix(0, m.GetReceivedUnixNano())); age < 0 || age > time.Minute {
				return false, fmt.Sprintf("h1's sample received %s ago", age)
			}
			return true, ""
		})
	}
	resp, err := c.Client(c.Followers()[0]).ListHosts(ctx(t), &rollwavev1.ListHostsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetHosts()) != 2 {
		t.Fatalf("listed %d hosts, want h1 and h2", len(resp.GetHosts()))
	}
	for _, hv := range resp.GetHosts() {
		if hv.GetMetrics() != nil {
			t.Errorf("%s has metrics though the request did not ask for them", hv.GetHost().GetId())
		}
	}
	resp, err = c.Client(leader).ListHosts(ctx(t), &rollwavev1.ListHostsRequest{Host: "nope", Metrics: true})
	if err != nil || len(resp.GetHosts()) != 0 {
		t.Fatalf("host = nope: %v, %v; want an empty list", resp.GetHosts(), err)
	}
}
