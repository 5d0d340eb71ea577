package raftfsm

import (
	"github.com/hashicorp/go-memdb"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// hostApp keys assignments: each host runs each app at most once.
type hostApp struct{ host, app string }

// plain is the state as plain maps: what a snapshot decodes into before its
// invariants are checked and it is loaded into memdb, and what the
// invariant checks and tests read. It is never shared.
type plain struct {
	hosts    map[string]*v1.Host
	cells    map[string]*v1.Cell
	apps     map[string]*v1.App
	releases map[string]*v1.Release
	// Full history per (host, app), ascending by generation; the last entry
	// is the current assignment.
	assignments map[hostApp][]*v1.Assignment
	// Ascending by seq.
	events       []*v1.Event
	freezes      map[string]*v1.FreezeWindow
	globalFreeze bool
	freezeReason string
	// ACL tokens by accessor id; aclBootstrapUnixNano is when ACLs were
	// bootstrapped (0: not yet).
	aclTokens            map[string]*v1.ACLToken
	aclBootstrapUnixNano int64
	// Notification delivery cursors by target name.
	notifyCursors map[string]*v1.NotifyCursor
	// Release chains by name.
	chains       map[string]*v1.Chain
	appliedIndex uint64
}

func newPlain() *plain {
	return &plain{
		hosts:       map[string]*v1.Host{},
		cells:       map[string]*v1.Cell{},
		apps:        map[string]*v1.App{},
		releases:    map[string]*v1.Release{},
		assignments: map[hostApp][]*v1.Assignment{},
		freezes:     map[string]*v1.FreezeWindow{},
		aclTokens:   map[string]*v1.ACLToken{},

		notifyCursors: map[string]*v1.NotifyCursor{},
		chains:        map[string]*v1.Chain{},
	}
}

// addRecord puts one decoded object into a state being built.
func (s *plain) addRecord(t recordType, m proto.Message) {
	switch t {
	case recHost:
		h := m.(*v1.Host)
		s.hosts[h.GetId()] = h
	case recCell:
		c := m.(*v1.Cell)
		s.cells[c.GetName()] = c
	case recApp:
		a := m.(*v1.App)
		s.apps[a.GetName()] = a
	case recRelease:
		r := m.(*v1.Release)
		s.releases[r.GetId()] = r
	case recAssignment:
		a := m.(*v1.Assignment)
		k := hostApp{a.GetHost(), a.GetApp()}
		s.assignments[k] = append(s.assignments[k], a)
	case recEvent:
		s.events = append(s.events, m.(*v1.Event))
	case recFreeze:
		w := m.(*v1.FreezeWindow)
		s.freezes[w.GetId()] = w
	case recGlobalFreeze:
		g := m.(*v1.SetGlobalFreezeCommand)
		s.globalFreeze, s.freezeReason = g.GetOn(), g.GetReason()
	case recACLBootstrap:
		s.aclBootstrapUnixNano = m.(*v1.ACLBootstrapCommand).GetTimeUnixNano()
	case recACLToken:
		t := m.(*v1.ACLToken)
		s.aclTokens[t.GetAccessorId()] = t
	case recNotifyCursor:
		c := m.(*v1.NotifyCursor)
		s.notifyCursors[c.GetTarget()] = c
	case recChain:
		c := m.(*v1.Chain)
		s.chains[c.GetName()] = c
	}
}

// toPlain copies a view's objects (clones) into maps.
func (v *view) toPlain(appliedIndex uint64) *plain {
	p := newPlain()
	_ = v.eachRecord(func(t recordType, m proto.Message) error {
		p.addRecord(t, proto.Clone(m))
		return nil
	})
	p.appliedIndex = appliedIndex
	return p
}

// load stores a plain state's objects (the objects themselves: p must not
// be used afterwards) into a fresh memdb.
func (p *plain) load() *memdb.MemDB {
	db := newDB()
	v := &view{tx: db.Txn(true)}
	for _, o := range p.hosts {
		v.put(tHost, o)
	}
	for _, o := range p.cells {
		v.put(tCell, o)
	}
	for _, o := range p.apps {
		v.put(tApp, o)
	}
	for _, o := range p.releases {
		v.put(tRelease, o)
	}
	for _, hist := range p.assignments {
		for _, a := range hist {
			v.put(tHist, a)
		}
		if len(hist) > 0 {
			v.put(tCur, hist[len(hist)-1])
		}
	}
	for _, e := range p.events {
		v.put(tEvent, e)
	}
	for _, o := range p.freezes {
		v.put(tFreeze, o)
	}
	for _, o := range p.aclTokens {
		v.put(tACL, o)
	}
	for _, o := range p.notifyCursors {
		v.put(tNotify, o)
	}
	for _, o := range p.chains {
		v.put(tChain, o)
	}
	v.setMeta(meta{globalFreeze: p.globalFreeze, freezeReason: p.freezeReason, aclBootstrapUnixNano: p.aclBootstrapUnixNano})
	v.tx.Commit()
	return db
}
