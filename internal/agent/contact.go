package agent

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rollwave/rollwave/internal/gossip"
)

// markAck records contact with a leader (a heartbeat ack, a welcome, or
// the agent's start) on the monotonic clock.
func (a *Agent) markAck() {
	now := a.clock.Mono()
	prev := time.Duration(a.lastAck.Swap(int64(now)))
	if now-prev > 3*a.cfg.HeartbeatInterval {
		// Contact came back after a silence: let every app look at once
		// (a hold to report, a revert no longer needed).
		a.kickAll()
	}
}

// sinceAck is how long ago the last contact was, on the monotonic clock.
func (a *Agent) sinceAck() time.Duration {
	return a.clock.Mono() - time.Duration(a.lastAck.Load())
}

// contactVerdict says why the agent hears no leader, from its gossip view.
type contactVerdict struct {
	// controlPlaneDown: this host still reaches its gossip peers and none
	// of them sees a live leader either. Otherwise the host is isolated.
	controlPlaneDown bool
	// leaderSeen: gossip advertises a live leader (the host is isolated
	// only if that stays so without an ack; see appCtl.leaderBack).
	leaderSeen bool
	// evidence is the gossip view the verdict rests on, for logs, the
	// state file and the report.
	evidence string
}

// classifyContact tells "I am cut off" from "the control plane is down".
// Isolated: a live leader is still advertised in gossip (the peers see it;
// only this host has lost it), or no gossip peer is reachable (no evidence
// either way: the host behaves as cut off). Control plane down: peers are
// alive in this host's view and none of them advertises a live leader.
// memberlist disseminates failures, so "no live leader" here means the
// peers that gossip with this host see none either.
func (a *Agent) classifyContact() contactVerdict {
	var peers, peersAlive, servers, serversAlive int
	for _, m := range a.pool.Members() {
		if m.Name == a.cfg.NodeName {
			continue
		}
		alive := m.Status == gossip.StatusAlive
		switch m.Meta.Role {
		case gossip.RoleServer:
			servers++
			if alive {
				serversAlive++
			}
		case gossip.RoleAgent:
			peers++
			if alive {
				peersAlive++
			}
		}
	}
	view := fmt.Sprintf("%d of %d agent peers alive, %d of %d coordinators alive", peersAlive, peers, serversAlive, servers)
	if l, ok := a.pool.Leader(); ok {
		// A killed coordinator stays alive in gossip until memberlist
		// declares it dead, which can take longer than isolation_timeout
		// (seen on real hosts: every coordinator SIGKILLed, the agents
		// still listed the leader alive 10 s later and reverted as
		// isolated). So ask the coordinators directly: if one answers a
		// gossip ping, the control plane is up and only this host lacks
		// its ack; if none does while peers are reachable, it is down.
		answered := a.pingMembers(gossip.RoleServer, 0)
		if answered != "" {
			return contactVerdict{leaderSeen: true, evidence: fmt.Sprintf("isolated: peers still see leader %s alive (%s; coordinator %s answers gossip pings)", l.Meta.NodeID, view, answered)}
		}
		// The same lag hides a cut of this host's own network: its peers
		// stay alive in its view too. One of them must answer.
		if peersAlive == 0 || a.pingMembers(gossip.RoleAgent, maxPeerPings) == "" {
			return contactVerdict{evidence: fmt.Sprintf("isolated: no coordinator and no gossip peer answers a gossip ping (%s)", view)}
		}
		return contactVerdict{controlPlaneDown: true, evidence: fmt.Sprintf("control plane down: peers answer, leader %s still listed but no coordinator answers a gossip ping (%s)", l.Meta.NodeID, view)}
	}
	if peersAlive == 0 {
		return contactVerdict{evidence: fmt.Sprintf("isolated: no gossip peer reachable (%s)", view)}
	}
	return contactVerdict{controlPlaneDown: true, evidence: fmt.Sprintf("control plane down: peers reachable and no live leader (%s)", view)}
}

// pingAttempts is how many gossip pings each coordinator gets before it
// counts as not answering (one lost UDP packet is not an outage).
const pingAttempts = 2

// maxPeerPings is how many agent peers are pinged to learn whether this
// host still reaches any.
const maxPeerPings = 3

// pingMembers pings the members of role that gossip lists as alive (at
// most limit of them, 0 = all), all at once, and returns the name of one
// that answered ("" if none did). It takes at most pingAttempts ×
// memberlist's ProbeTimeout.
func (a *Agent) pingMembers(role gossip.Role, limit int) string {
	var targets []gossip.Member
	for _, m := range a.pool.Members() {
		if m.Name != a.cfg.NodeName && m.Meta.Role == role && m.Status == gossip.StatusAlive {
			targets = append(targets, m)
		}
	}
	if limit > 0 && len(targets) > limit {
		rand.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
		targets = targets[:limit]
	}
	answered := make(chan string, len(targets))
	for _, m := range targets {
		go func() {
			for range pingAttempts {
				if _, err := a.pool.Ping(m.Name, m.Addr); err == nil {
					answered <- m.Name
					return
				}
			}
			answered <- ""
		}()
	}
	first := ""
	for range targets {
		if n := <-answered; n != "" && first == "" {
			first = n
		}
	}
	return first
}
