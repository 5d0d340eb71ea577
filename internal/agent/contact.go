package agent

import (
	"fmt"
	"math/rand/v2"
	"sync"
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
	return a.clock.Mono() - a.lastAckAt()
}

// lastAckAt is the monotonic time of the last contact.
func (a *Agent) lastAckAt() time.Duration { return time.Duration(a.lastAck.Load()) }

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
		// The same lag hides a cut of this host's own network: its peers
		// stay alive in its view too, so one of them must answer. Both
		// are asked at once: the probe takes one ping round
		// (probeDuration), not two, which is what lets the watchdog
		// decide at isolation_timeout (see watchdog).
		var server, peer string
		var wg sync.WaitGroup
		wg.Go(func() { server = a.pingMembers(gossip.RoleServer, 0) })
		if peersAlive > 0 {
			wg.Go(func() { peer = a.pingMembers(gossip.RoleAgent, maxPeerPings) })
		}
		wg.Wait()
		if server != "" {
			return contactVerdict{leaderSeen: true, evidence: fmt.Sprintf("isolated: peers still see leader %s alive (%s; coordinator %s answers gossip pings)", l.Meta.NodeID, view, server)}
		}
		if peer == "" {
			return contactVerdict{evidence: fmt.Sprintf("isolated: no coordinator and no gossip peer answers a gossip ping (%s)", view)}
		}
		return contactVerdict{controlPlaneDown: true, evidence: fmt.Sprintf("control plane down: peers answer (%s), leader %s still listed but no coordinator answers a gossip ping (%s)", peer, l.Meta.NodeID, view)}
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

// probeMargin is added to the probe's own bound (pingAttempts × the ping
// timeout) when the watchdog starts it ahead of isolation_timeout: the
// goroutines and the UDP round trips of a loaded host need a little more
// than the timeouts alone. A probe that still runs at the timeout only
// delays the decision until it ends; it never shortens the silence.
const probeMargin = 250 * time.Millisecond

// probeDuration is how long the isolation probe (classifyContact) takes
// at most on this agent's gossip profile, with probeMargin: how far ahead
// of isolation_timeout the watchdog starts it.
func (a *Agent) probeDuration() time.Duration {
	return pingAttempts*a.pool.PingTimeout() + probeMargin
}

// watch is where one silence stands against isolation_timeout, from
// watchdog.
type watch struct {
	// probe: evidence is needed now, from a probe started at or after
	// probeFrom (monotonic: inside the silence) and, when deciding, ended
	// at or after freshFrom (not older than maxAge).
	probe     bool
	probeFrom time.Duration
	freshFrom time.Duration
	// decide: isolation_timeout has passed; decide from that evidence.
	decide bool
	// wake is how long until the next step (0: none before the next
	// contact or tick).
	wake time.Duration
}

// watchdog times the isolation decision of a bake that hears no leader.
// lastAck and now are monotonic readings, limit is isolation_timeout, lead
// how long the probe takes (probeDuration), maxAge how old (since its end)
// evidence may be when the decision comes late (a bake that went live
// after the timeout, or a hold that goes on). The probe starts lead before the timeout, so
// its pings are in flight during the last lead of the silence and the
// decision lands at lastAck + limit itself, not one reconcile tick and two
// ping rounds after it (what made the revert of a cut host land at
// isolation_timeout + 2.4 s on real hosts). The evidence is never older
// than lead at the timeout: it was gathered inside the silence, after the
// last ack, so an ack that arrives meanwhile moves probeFrom past it and
// it no longer counts.
func watchdog(lastAck, now, limit, lead, maxAge time.Duration) watch {
	lead = min(lead, limit)
	probeAt, decideAt := lastAck+limit-lead, lastAck+limit
	switch {
	case now < probeAt:
		return watch{wake: probeAt - now}
	case now < decideAt:
		return watch{probe: true, probeFrom: probeAt, wake: decideAt - now}
	}
	return watch{probe: true, probeFrom: probeAt, freshFrom: now - maxAge, decide: true}
}

// contactProbe runs classifyContact in the background, at most one at a
// time, so a reconciler never blocks on gossip pings and several apps
// share one probe. Its results carry the monotonic time the probe
// started, which is what watchdog's probeFrom is compared with.
type contactProbe struct {
	clock    Clock
	classify func() contactVerdict
	// done is called when a probe ends (the agent kicks every app).
	done func()

	wg      sync.WaitGroup // the probe in flight
	mu      sync.Mutex
	running bool
	have    bool
	started time.Duration // of the last finished probe
	ended   time.Duration
	last    contactVerdict
}

// verdict returns the verdict of the last probe if it started at or after
// from and ended at or after fresh (monotonic). Otherwise it starts one,
// unless one is running (a probe started too early is let finish: the next
// call starts a fresh one), and reports false; done is called when the
// probe ends. (Freshness counts from the end, so a probe slower than
// maxAge on a loaded host still yields a verdict.)
func (p *contactProbe) verdict(from, fresh time.Duration) (contactVerdict, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.have && p.started >= from && p.ended >= fresh {
		return p.last, true
	}
	if !p.running {
		p.running = true
		started := p.clock.Mono()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			v := p.classify()
			p.mu.Lock()
			p.running, p.have, p.started, p.ended, p.last = false, true, started, p.clock.Mono(), v
			p.mu.Unlock()
			p.done()
		}()
	}
	return contactVerdict{}, false
}

// wait waits for the probe in flight (it takes at most probeDuration), so
// the agent leaves gossip only after its last ping.
func (p *contactProbe) wait() { p.wg.Wait() }
