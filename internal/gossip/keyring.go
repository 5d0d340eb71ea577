package gossip

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Keyring rotation.
//
// memberlist encrypts with the primary key of its keyring and decrypts with
// any key in it, but has no way to change keyrings across the pool. Serf
// sends each change as a query and collects one answer per member; here the
// simplest scheme that converges is used instead:
//
//   - Each member holds its keyring as a versioned state: the keys, the
//     primary, a version (a Lamport clock: a change made here gets one more
//     than the highest version seen) and the member that made the change.
//   - InstallKey, UseKey and RemoveKey change the local keyring, bump the
//     version, and gossip the whole new state to the pool (a memberlist
//     user broadcast, re-broadcast by every member it changes).
//   - Every push/pull sync (LocalState/MergeRemoteState, every 30 s on a
//     LAN, and on join) carries the state too, so a member that missed the
//     broadcast, or was down, converges as long as it still shares a key
//     with the pool.
//   - A member adopts a state whose (version, origin) is higher than its
//     own: it installs the missing keys, switches the primary and drops
//     keys the state no longer lists. Concurrent changes from two members
//     are resolved last-writer-wins by that order.
//
// Messages are only accepted from members that hold a current key (memberlist
// authenticates every packet with AES-GCM), so any member can rotate — as
// with Serf, gossip keys protect the pool from outsiders, not members from
// each other. Callers expose these methods to operators only behind an
// authenticated, authorized RPC.
//
// The operator keeps the order install → (all have it) → use → (all use
// it) → remove: removing a key some member still encrypts with cuts that
// member off, and a member that missed an install cannot read a pool that
// already uses the new key. Changes are not persisted: a restarted member
// uses the key from its configuration, so update the configuration of
// every member after a rotation.

// ErrNoEncryption is returned by the keyring methods of a pool started
// without Config.SecretKey: memberlist cannot turn encryption on at run time.
var ErrNoEncryption = errors.New("gossip: encryption is not enabled; set the same key on every member and restart them")

const (
	// msgKeyring prefixes a keyring state in user messages and push/pull state.
	msgKeyring byte = 'K'
	// maxKeyringKeys bounds a keyring state accepted from the pool.
	maxKeyringKeys = 16
)

// KeyringState is one member's keyring.
type KeyringState struct {
	// Keys are the installed keys, the primary first.
	Keys [][]byte
	// Primary is the key outgoing messages are encrypted with.
	Primary []byte
	// Version counts keyring changes across the pool; 0 means the keyring
	// is the one from the configuration.
	Version uint64
	// Origin is the member that made the change that produced Version.
	Origin string
}

// keyringWire is KeyringState on the wire: JSON after msgKeyring.
type keyringWire struct {
	Version uint64   `json:"v"`
	Origin  string   `json:"o"`
	Keys    []string `json:"k"`
	Primary string   `json:"p"`
}

// keyManager owns the pool's memberlist keyring and its version.
type keyManager struct {
	mu      sync.Mutex
	ring    *memberlist.Keyring
	version uint64
	origin  string
}

func newKeyManager(secret []byte) (*keyManager, error) {
	if len(secret) == 0 {
		return nil, nil
	}
	ring, err := memberlist.NewKeyring(nil, secret)
	if err != nil {
		return nil, fmt.Errorf("gossip: keyring: %w", err)
	}
	return &keyManager{ring: ring}, nil
}

// stateLocked returns the current state. Callers hold km.mu.
func (km *keyManager) stateLocked() KeyringState {
	keys := km.ring.GetKeys()
	out := KeyringState{Version: km.version, Origin: km.origin, Keys: make([][]byte, len(keys))}
	for i, k := range keys {
		out.Keys[i] = bytes.Clone(k)
	}
	if len(out.Keys) > 0 {
		out.Primary = out.Keys[0]
	}
	return out
}

func encodeKeyring(s KeyringState) []byte {
	w := keyringWire{Version: s.Version, Origin: s.Origin, Primary: base64.StdEncoding.EncodeToString(s.Primary)}
	for _, k := range s.Keys {
		w.Keys = append(w.Keys, base64.StdEncoding.EncodeToString(k))
	}
	b, _ := json.Marshal(w) // strings and numbers only: cannot fail
	return append([]byte{msgKeyring}, b...)
}

// decodeKeyring parses and checks a keyring state from the pool.
func decodeKeyring(b []byte) (KeyringState, error) {
	if len(b) == 0 || b[0] != msgKeyring {
		return KeyringState{}, errors.New("not a keyring message")
	}
	var w keyringWire
	if err := json.Unmarshal(b[1:], &w); err != nil {
		return KeyringState{}, fmt.Errorf("keyring message: %w", err)
	}
	if len(w.Keys) == 0 || len(w.Keys) > maxKeyringKeys {
		return KeyringState{}, fmt.Errorf("keyring message: %d keys, want 1 to %d", len(w.Keys), maxKeyringKeys)
	}
	s := KeyringState{Version: w.Version, Origin: w.Origin}
	var err error
	if s.Primary, err = decodeKey(w.Primary); err != nil {
		return KeyringState{}, fmt.Errorf("keyring message: primary: %w", err)
	}
	hasPrimary := false
	for _, k := range w.Keys {
		key, err := decodeKey(k)
		if err != nil {
			return KeyringState{}, fmt.Errorf("keyring message: %w", err)
		}
		hasPrimary = hasPrimary || bytes.Equal(key, s.Primary)
		s.Keys = append(s.Keys, key)
	}
	if !hasPrimary {
		return KeyringState{}, errors.New("keyring message: primary key is not among the keys")
	}
	return s, nil
}

func decodeKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("key is not base64")
	}
	if err := memberlist.ValidateKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// newer reports whether (v, origin) orders after the local state.
func (km *keyManager) newerLocked(v uint64, origin string) bool {
	return v > km.version || v == km.version && origin > km.origin
}

// adoptLocked makes the keyring equal to s. Keys are added first, then the
// primary switched, then the rest removed, so the ring is never without a
// key the pool uses.
func (km *keyManager) adoptLocked(s KeyringState) error {
	for _, k := range s.Keys {
		if err := km.ring.AddKey(k); err != nil {
			return err
		}
	}
	if err := km.ring.UseKey(s.Primary); err != nil {
		return err
	}
	for _, k := range km.ring.GetKeys() {
		if !containsKey(s.Keys, k) {
			if err := km.removeLocked(k); err != nil {
				return err
			}
		}
	}
	km.version, km.origin = s.Version, s.Origin
	return nil
}

// removeLocked removes one key. memberlist's RemoveKey shifts the key slice
// in place, and readers on the network path may hold that slice (GetKeys
// returns it unlocked); UseKey of the current primary first swaps in a
// fresh copy nobody holds yet, which narrows that upstream race to the
// instant between the two calls.
func (km *keyManager) removeLocked(key []byte) error {
	primary := km.ring.GetPrimaryKey()
	if bytes.Equal(primary, key) {
		return errors.New("gossip: the primary key cannot be removed; make another key primary first (UseKey)")
	}
	if err := km.ring.UseKey(primary); err != nil {
		return err
	}
	return km.ring.RemoveKey(key)
}

func containsKey(keys [][]byte, k []byte) bool {
	for _, x := range keys {
		if bytes.Equal(x, k) {
			return true
		}
	}
	return false
}

// merge adopts s if it is newer than the local state and reports whether
// it did.
func (km *keyManager) merge(s KeyringState) (bool, error) {
	km.mu.Lock()
	defer km.mu.Unlock()
	if !km.newerLocked(s.Version, s.Origin) {
		return false, nil
	}
	if err := km.adoptLocked(s); err != nil {
		return false, err
	}
	return true, nil
}

// ListKeys returns this member's keyring. Other members converge to it
// through gossip; ask several (or all servers) to check a rotation.
func (p *Pool) ListKeys() (KeyringState, error) {
	if p.keys == nil {
		return KeyringState{}, ErrNoEncryption
	}
	p.keys.mu.Lock()
	defer p.keys.mu.Unlock()
	return p.keys.stateLocked(), nil
}

// InstallKey adds key (16, 24 or 32 bytes) to every member's keyring: here
// at once, elsewhere through gossip. Installing a key twice is harmless.
// It waits up to BroadcastTimeout for the broadcast, like SetMeta; a
// timeout wraps ErrBroadcastTimeout but the change is made here and spreads
// through push/pull sync.
func (p *Pool) InstallKey(key []byte) error {
	if err := memberlist.ValidateKey(key); err != nil {
		return fmt.Errorf("gossip: InstallKey: %w", err)
	}
	return p.changeKeyring(func(km *keyManager) error { return km.ring.AddKey(bytes.Clone(key)) })
}

// UseKey makes key, which must be installed, the key every member
// encrypts with.
func (p *Pool) UseKey(key []byte) error {
	return p.changeKeyring(func(km *keyManager) error {
		if !containsKey(km.ring.GetKeys(), key) {
			return errors.New("gossip: UseKey: key is not installed; InstallKey it first")
		}
		return km.ring.UseKey(key)
	})
}

// RemoveKey removes key from every member's keyring. The primary key cannot
// be removed; removing a key that is not installed is harmless.
func (p *Pool) RemoveKey(key []byte) error {
	return p.changeKeyring(func(km *keyManager) error { return km.removeLocked(key) })
}

// changeKeyring applies fn to the local keyring, gives the result the next
// version and gossips it.
func (p *Pool) changeKeyring(fn func(*keyManager) error) error {
	if p.keys == nil {
		return ErrNoEncryption
	}
	p.lifeMu.Lock()
	err := p.usableLocked()
	p.lifeMu.Unlock()
	if err != nil {
		return err
	}
	km := p.keys
	km.mu.Lock()
	if err := fn(km); err != nil {
		km.mu.Unlock()
		return err
	}
	km.version++
	km.origin = p.cfg.NodeName
	state := km.stateLocked()
	km.mu.Unlock()
	p.logger.Info("gossip keyring changed", "version", state.Version, "keys", len(state.Keys))
	return p.broadcastKeyring(state, true)
}

// broadcastKeyring queues state for gossip. With wait, it waits up to
// BroadcastTimeout for the broadcast to be sent its full number of times,
// unless this member is alone.
func (p *Pool) broadcastKeyring(state KeyringState, wait bool) error {
	done := make(chan struct{})
	p.bcast.QueueBroadcast(&keyringBroadcast{msg: encodeKeyring(state), done: done})
	if !wait || p.ml.NumMembers() <= 1 {
		return nil
	}
	t := time.NewTimer(p.cfg.BroadcastTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: keyring change (version %d)", ErrBroadcastTimeout, state.Version)
	}
}

// mergeKeyring handles a keyring state from the pool (broadcast or
// push/pull); a state that changes the keyring is gossiped on. It never
// blocks: it runs inside memberlist's delegate callbacks.
func (p *Pool) mergeKeyring(b []byte, how string) {
	if p.keys == nil {
		return
	}
	s, err := decodeKeyring(b)
	if err != nil {
		p.logger.Warn("ignoring bad keyring state", "via", how, "error", err)
		return
	}
	changed, err := p.keys.merge(s)
	if err != nil {
		p.logger.Error("cannot adopt keyring state", "via", how, "version", s.Version, "origin", s.Origin, "error", err)
		return
	}
	if changed {
		p.logger.Info("gossip keyring updated", "via", how, "version", s.Version, "origin", s.Origin, "keys", len(s.Keys))
		_ = p.broadcastKeyring(s, false)
	}
}

// keyringBroadcast is one keyring state in memberlist's broadcast queue; a
// newer one replaces an older one still queued.
type keyringBroadcast struct {
	msg  []byte
	done chan struct{}
	once sync.Once
}

func (b *keyringBroadcast) Invalidates(other memberlist.Broadcast) bool {
	_, ok := other.(*keyringBroadcast)
	return ok
}
func (b *keyringBroadcast) Name() string    { return "rollwave-keyring" }
func (b *keyringBroadcast) Message() []byte { return b.msg }
func (b *keyringBroadcast) Finished()       { b.once.Do(func() { close(b.done) }) }
