package gossip

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Status is a member's state as seen by this node.
//
// There is no "suspect": memberlist v0.5.4 raises no event when it starts
// suspecting a member, and the *Node values its Members() returns point
// into state it mutates under a private lock, so reading their State is a
// data race. A suspect member shows as alive until memberlist declares it
// dead.
type Status string

const (
	// StatusAlive: the member answers probes (or is not yet declared dead).
	StatusAlive Status = "alive"
	// StatusDead: memberlist declared the member failed.
	StatusDead Status = "dead"
	// StatusLeft: the member left gracefully (Pool.Leave).
	StatusLeft Status = "left"
)

// Member is one node of the pool as seen by this node.
type Member struct {
	// Name is the member's gossip node name.
	Name string
	// Addr is the member's gossip address, "ip:port".
	Addr string
	// Meta is the member's last known metadata. It is the zero Meta when the
	// member's metadata could not be decoded (logged at warn).
	Meta Meta
	// Status is alive, dead or left.
	Status Status
	// Since is the local time of the last status change.
	Since time.Time
}

// record is a Member plus what Leader() needs to break ties.
type record struct {
	Member
	leaderSince time.Time // when this node's current leadership claim was first seen
}

// view is the membership view, fed by memberlist's event delegate (it
// implements memberlist.EventDelegate). memberlist calls the Notify methods
// one at a time, with its node lock held, so they must not block and must
// not call back into memberlist.
type view struct {
	logger    *slog.Logger
	hub       *hub
	reapAfter time.Duration
	now       func() time.Time

	mu        sync.Mutex
	byName    map[string]*record
	nextPrune time.Time
}

func newView(logger *slog.Logger, h *hub, reapAfter time.Duration) *view {
	return &view{
		logger:    logger,
		hub:       h,
		reapAfter: reapAfter,
		now:       time.Now,
		byName:    make(map[string]*record),
	}
}

// NotifyJoin implements memberlist.EventDelegate. It does not block.
func (v *view) NotifyJoin(n *memberlist.Node) {
	m := v.apply(n, StatusAlive)
	v.logger.Log(context.Background(), eventLevel(m, slog.LevelInfo), "member joined",
		"node", m.Name, "addr", m.Addr, "role", string(m.Meta.Role))
	v.hub.publish(Event{Type: EventJoin, Member: m})
}

// NotifyUpdate implements memberlist.EventDelegate. It does not block.
func (v *view) NotifyUpdate(n *memberlist.Node) {
	m := v.apply(n, StatusAlive)
	v.logger.Debug("member updated", "node", m.Name, "addr", m.Addr, "leader", m.Meta.Leader, "term", m.Meta.Term)
	v.hub.publish(Event{Type: EventUpdate, Member: m})
}

// NotifyLeave implements memberlist.EventDelegate. It does not block.
//
// memberlist calls it both for failures and graceful leaves and, in v0.5.4,
// always passes State alive (hashicorp/memberlist#293), so the distinction
// comes from the Leaving flag Pool.Leave advertises just before leaving.
func (v *view) NotifyLeave(n *memberlist.Node) {
	m := v.apply(n, StatusDead)
	if m.Status == StatusLeft {
		v.logger.Log(context.Background(), eventLevel(m, slog.LevelInfo), "member left", "node", m.Name, "addr", m.Addr)
	} else {
		v.logger.Log(context.Background(), eventLevel(m, slog.LevelWarn), "member failed", "node", m.Name, "addr", m.Addr)
	}
	v.hub.publish(Event{Type: EventLeave, Member: m})
}

// eventLevel logs changes of servers at level and those of other members
// at debug: in a fleet of thousands of agents every node sees every agent
// come and go, and the coordinator logs what matters to it from its
// subscription.
func eventLevel(m Member, level slog.Level) slog.Level {
	if m.Meta.Role == RoleServer {
		return level
	}
	return slog.LevelDebug
}

// apply records n with the given status (dead becomes left when the member
// announced it was leaving) and returns a copy of the new state.
func (v *view) apply(n *memberlist.Node, status Status) Member {
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		v.logger.Warn("ignoring undecodable member metadata", "node", n.Name, "error", err)
		meta = Meta{}
	}
	now := v.now()

	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.byName[n.Name]
	if !ok {
		v.pruneLocked(now) // new names are where the map grows
		r = &record{Member: Member{Name: n.Name, Meta: meta}}
		v.byName[n.Name] = r
	}
	r.Addr = n.Address()
	if status == StatusDead {
		// n.Meta is the member's last alive meta, which we already hold.
		if r.Meta.Leaving || meta.Leaving {
			status = StatusLeft
		}
	} else {
		if meta.Leader && (!r.Meta.Leader || r.Status != StatusAlive || r.Meta.Term != meta.Term) {
			r.leaderSince = now
		}
		r.Meta = meta
	}
	if r.Status != status || r.Since.IsZero() {
		r.Status, r.Since = status, now
	}
	return r.Member
}

// get returns the member called name.
func (v *view) get(name string) (Member, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.byName[name]
	if !ok {
		return Member{}, false
	}
	return r.Member, true
}

// list returns every known member, including dead and left ones younger
// than reapAfter, sorted by name.
func (v *view) list() []Member {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked(now)
	out := make([]Member, 0, len(v.byName))
	for _, r := range v.byName {
		if !v.expired(r, now) {
			out = append(out, r.Member)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// leader picks the alive server claiming leadership. Several claims happen
// briefly around a leadership change (the old leader has not withdrawn yet)
// or when a partitioned old leader still advertises. The highest Term wins,
// since raft never has two leaders in one term; among equal terms (servers
// that do not advertise one) the claim first seen most recently wins, as the
// newer claim is the likelier truth; the node name breaks any remaining tie
// so every caller gets the same answer.
func (v *view) leader() (Member, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var best *record
	for _, r := range v.byName {
		if r.Status != StatusAlive || r.Meta.Role != RoleServer || !r.Meta.Leader {
			continue
		}
		if best == nil || betterLeader(r, best) {
			best = r
		}
	}
	if best == nil {
		return Member{}, false
	}
	return best.Member, true
}

func betterLeader(a, b *record) bool {
	if a.Meta.Term != b.Meta.Term {
		return a.Meta.Term > b.Meta.Term
	}
	if !a.leaderSince.Equal(b.leaderSince) {
		return a.leaderSince.After(b.leaderSince)
	}
	return a.Name < b.Name
}

// expired reports whether r failed or left at least reapAfter ago.
func (v *view) expired(r *record, now time.Time) bool {
	return r.Status != StatusAlive && now.Sub(r.Since) >= v.reapAfter
}

// pruneLocked deletes expired records. It scans at most once per tenth of
// reapAfter, so that calling it from the delegate stays cheap on large
// pools; readers skip expired records that are still stored.
func (v *view) pruneLocked(now time.Time) {
	if now.Before(v.nextPrune) {
		return
	}
	v.nextPrune = now.Add(v.reapAfter / 10)
	for name, r := range v.byName {
		if v.expired(r, now) {
			delete(v.byName, name)
		}
	}
}
