package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrShutdown is returned by operations on a Pool after Shutdown.
	ErrShutdown = errors.New("gossip: pool is shut down")
	// ErrLeft is returned by Join and SetMeta after Leave: memberlist cannot
	// rejoin once it has left; create a new Pool instead.
	ErrLeft = errors.New("gossip: pool has left the cluster")
	// ErrBroadcastTimeout is returned (wrapped) when a metadata or leave
	// broadcast was not confirmed within the timeout. The change is applied
	// locally and still spreads through gossip and push/pull sync.
	ErrBroadcastTimeout = errors.New("gossip: broadcast not confirmed in time")
	// ErrJoin is returned (wrapped) when Join reached none of its addresses
	// before its deadline.
	ErrJoin = errors.New("gossip: join failed")
)

// Pool is this node's membership in the gossip pool. All methods are safe
// for concurrent use.
type Pool struct {
	cfg       Config
	logger    *slog.Logger
	ml        *memberlist.Memberlist
	view      *view
	hub       *hub
	localAddr string
	// pingTimeout is memberlist's ProbeTimeout: how long Ping waits.
	pingTimeout time.Duration

	// lifeMu serialises SetMeta, Leave and Shutdown: memberlist panics on
	// Leave after Shutdown, and a meta update racing a leave could undo the
	// leave flag.
	lifeMu   sync.Mutex
	left     bool
	shutdown bool

	// metaMu guards meta and metaBytes, which memberlist reads through the
	// delegate (possibly while SetMeta holds lifeMu).
	metaMu    sync.RWMutex
	meta      Meta
	metaBytes []byte

	// keys is the encryption keyring (nil without Config.SecretKey); bcast
	// queues keyring changes for gossip (keyring.go). mlReady is ml for
	// the queue's member count, which memberlist may ask for inside Create.
	keys    *keyManager
	bcast   *memberlist.TransmitLimitedQueue
	mlReady atomic.Pointer[memberlist.Memberlist]
}

// New validates cfg and starts a memberlist instance listening on
// cfg.BindAddr. The pool knows only itself until Join.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "gossip")
	metaBytes, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, err // unreachable after Validate; kept for safety
	}
	p := &Pool{
		cfg:       cfg,
		logger:    logger,
		hub:       newHub(),
		meta:      cfg.Meta,
		metaBytes: metaBytes,
	}
	p.view = newView(logger, p.hub, cfg.ReapAfter)

	mc := cfg.memberlistConfig(logger)
	p.pingTimeout = mc.ProbeTimeout
	if p.keys, err = newKeyManager(cfg.SecretKey); err != nil {
		return nil, err
	}
	if p.keys != nil {
		mc.Keyring = p.keys.ring
	}
	p.bcast = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			if ml := p.mlReady.Load(); ml != nil {
				return ml.NumMembers()
			}
			return 1
		},
		RetransmitMult: mc.RetransmitMult,
	}
	mc.Delegate = &delegate{p: p}
	mc.Events = p.view
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist on %s: %w", cfg.BindAddr, err)
	}
	p.ml = ml
	p.mlReady.Store(ml)
	// memberlist reported the local node to the view inside Create, with the
	// address it advertises (the picked port when BindAddr's port was 0).
	self, ok := p.view.get(cfg.NodeName)
	if !ok {
		_ = ml.Shutdown()
		return nil, fmt.Errorf("gossip: memberlist did not report local node %q", cfg.NodeName)
	}
	p.localAddr = self.Addr
	logger.Info("gossip started", "node", cfg.NodeName, "addr", p.localAddr, "role", string(cfg.Meta.Role))
	return p, nil
}

// LocalAddr returns the "ip:port" other members use to reach this one; pass
// it to their Join.
func (p *Pool) LocalAddr() string { return p.localAddr }

// LocalMeta returns the metadata this node currently advertises.
func (p *Pool) LocalMeta() Meta {
	p.metaMu.RLock()
	defer p.metaMu.RUnlock()
	return p.meta
}

// Members returns every member this node knows, itself included, sorted by
// name: alive ones, and dead or left ones until ReapAfter has passed.
func (p *Pool) Members() []Member { return p.view.list() }

// Ping sends one gossip ping to member name at addr ("ip:port") and waits
// up to memberlist's ProbeTimeout for its ack: whether that member answers
// this node now. The view says alive until memberlist declares a member
// dead (several probe rounds and a suspicion timeout after it stopped);
// Ping does not wait for that. It blocks for at most ProbeTimeout.
func (p *Pool) Ping(name, addr string) (time.Duration, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, fmt.Errorf("gossip: ping %s: %w", name, err)
	}
	return p.ml.Ping(name, ua)
}

// PingTimeout is the longest one Ping waits for its ack (memberlist's
// ProbeTimeout of this pool's profile).
func (p *Pool) PingTimeout() time.Duration { return p.pingTimeout }

// HealthScore is memberlist's local health ("awareness") of this member:
// 0 when its recent probes were answered. It rises by one for each probe
// that got no ack at all (direct, indirect or TCP) and for each suspicion
// of this member it had to refute, falls by one with each answered probe,
// and stays below memberlist's AwarenessMaxMultiplier (8). memberlist
// scales this member's probe interval and timeouts by score+1, so a
// score above 0 says this member is not keeping the protocol's soft
// real-time pace (a starved CPU, lost packets). Read-only.
func (p *Pool) HealthScore() int { return p.ml.GetHealthScore() }

// Servers returns the alive members with role server, sorted by name.
func (p *Pool) Servers() []Member {
	var out []Member
	for _, m := range p.view.list() {
		if m.Status == StatusAlive && m.Meta.Role == RoleServer {
			out = append(out, m)
		}
	}
	return out
}

// Leader returns the alive server that advertises itself as raft leader.
// When several do, the highest Meta.Term wins, then the most recently seen
// claim, then the lowest name. It is a hint: the leader may have changed
// since the claim was gossiped, and a follower redirects callers anyway.
func (p *Pool) Leader() (Member, bool) { return p.view.leader() }

// Subscribe returns a channel of membership events and a function that
// cancels the subscription and closes the channel. Events are delivered
// without ever blocking memberlist: when the channel (capacity buffer, or
// DefaultSubscribeBuffer if buffer <= 0) is full the event is dropped and
// counted in the next delivered Event's Missed. The channel is also closed
// by Shutdown.
func (p *Pool) Subscribe(buffer int) (<-chan Event, func()) {
	return p.hub.subscribe(buffer)
}

// DroppedEvents returns how many events were dropped, over all subscribers,
// because their channels were full.
func (p *Pool) DroppedEvents() uint64 { return p.hub.dropped.Load() }

// SetMeta changes the local metadata with fn and gossips it, waiting up to
// BroadcastTimeout for the broadcast (this is how a server announces it
// became or stopped being leader). fn works on a copy; if the result is
// invalid or too large, nothing changes and the error says why. A timeout
// returns an error wrapping ErrBroadcastTimeout, but the new metadata is in
// effect locally and will still spread.
func (p *Pool) SetMeta(fn func(*Meta)) error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if err := p.usableLocked(); err != nil {
		return err
	}
	next := p.LocalMeta()
	fn(&next)
	next.Leaving = false // reserved for Leave
	if err := checkMeta(next); err != nil {
		return fmt.Errorf("gossip: SetMeta: %w", err)
	}
	b, err := EncodeMeta(next)
	if err != nil {
		return fmt.Errorf("gossip: SetMeta: %w", err)
	}
	if !p.storeMeta(next, b) {
		return nil // nothing to gossip
	}
	return p.broadcastMeta(p.cfg.BroadcastTimeout)
}

// Leave announces a graceful departure and waits up to timeout in total for
// it to be gossiped. First it advertises Meta.Leaving, so that peers record
// this node as left rather than dead, then it broadcasts memberlist's leave.
// The pool keeps answering gossip until Shutdown, which should follow.
// Peers that miss the Leaving update (possible in large pools when timeout
// is short) record the node as dead. Calling Leave again is a no-op.
func (p *Pool) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("gossip: Leave timeout %v: must be positive", timeout)
	}
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.shutdown {
		return ErrShutdown
	}
	if p.left {
		return nil
	}
	p.left = true
	deadline := time.Now().Add(timeout)

	flagged := p.LocalMeta()
	flagged.Leaving = true
	b, err := EncodeMeta(flagged)
	var errs []error
	if err == nil && p.storeMeta(flagged, b) {
		// The leave broadcast below replaces this one in memberlist's
		// queue, so wait for it to finish before leaving.
		if err := p.broadcastMeta(time.Until(deadline)); err != nil {
			errs = append(errs, err)
		}
	}
	remaining := max(time.Until(deadline), time.Millisecond) // 0 would wait forever
	if err := p.ml.Leave(remaining); err != nil {
		errs = append(errs, fmt.Errorf("%w: leave: %v", ErrBroadcastTimeout, err))
	}
	p.logger.Info("left gossip pool", "node", p.cfg.NodeName)
	return errors.Join(errs...)
}

// Shutdown stops gossip without announcing it; peers will see this node as
// dead unless Leave came first. Subscription channels are closed. Calling
// it again is a no-op.
func (p *Pool) Shutdown() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	if p.shutdown {
		return nil
	}
	p.shutdown = true
	err := p.ml.Shutdown()
	p.hub.close()
	p.logger.Info("gossip stopped", "node", p.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

// usableLocked reports ErrShutdown or ErrLeft. Callers hold lifeMu.
func (p *Pool) usableLocked() error {
	switch {
	case p.shutdown:
		return ErrShutdown
	case p.left:
		return ErrLeft
	}
	return nil
}

// storeMeta installs new local metadata and reports whether its encoding
// changed.
func (p *Pool) storeMeta(m Meta, b []byte) bool {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	changed := !bytes.Equal(b, p.metaBytes)
	p.meta, p.metaBytes = m, b
	return changed
}

// broadcastMeta re-advertises the local node. memberlist's UpdateNode waits
// for the broadcast to finish its retransmits; a zero timeout would wait
// forever, hence the floor.
func (p *Pool) broadcastMeta(timeout time.Duration) error {
	if err := p.ml.UpdateNode(max(timeout, time.Millisecond)); err != nil {
		return fmt.Errorf("%w: meta update: %v", ErrBroadcastTimeout, err)
	}
	return nil
}

// checkMeta validates m and checks that it still fits when Leave adds its
// flag.
func checkMeta(m Meta) error {
	if err := m.Validate(); err != nil {
		return err
	}
	m.Leaving = true
	if _, err := EncodeMeta(m); err != nil {
		return fmt.Errorf("with the leave flag Pool.Leave adds: %w", err)
	}
	return nil
}

// delegate implements memberlist.Delegate: node metadata, and the keyring
// state in user messages and push/pull sync (keyring.go).
type delegate struct{ p *Pool }

// NodeMeta returns the encoded local metadata. It does not block beyond a
// read lock held only for short copies.
func (d *delegate) NodeMeta(limit int) []byte {
	d.p.metaMu.RLock()
	defer d.p.metaMu.RUnlock()
	if len(d.p.metaBytes) > limit {
		// Unreachable: sizes are checked against MetaMaxSize before they
		// are stored. memberlist would panic on oversize meta.
		return nil
	}
	return append([]byte(nil), d.p.metaBytes...)
}

// NotifyMsg handles a keyring broadcast; it does not block.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) > 0 && b[0] == msgKeyring {
		d.p.mergeKeyring(b, "broadcast")
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.p.bcast.GetBroadcasts(overhead, limit)
}

// LocalState sends this member's keyring in push/pull syncs.
func (d *delegate) LocalState(join bool) []byte {
	if d.p.keys == nil {
		return nil
	}
	d.p.keys.mu.Lock()
	defer d.p.keys.mu.Unlock()
	return encodeKeyring(d.p.keys.stateLocked())
}

// MergeRemoteState adopts a newer keyring from a push/pull sync.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) > 0 {
		d.p.mergeKeyring(buf, "push/pull")
	}
}
