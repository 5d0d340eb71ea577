package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// newKeyedPool starts a pool encrypting with key (none when nil).
func newKeyedPool(t *testing.T, name string, meta Meta, key []byte) *Pool {
	t.Helper()
	cfg := testConfig(t, name, meta)
	cfg.SecretKey = key
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// keyedCluster starts s1, s2 and a1 sharing key and waits until each sees
// all three alive.
func keyedCluster(t *testing.T, key []byte) []*Pool {
	t.Helper()
	pools := []*Pool{
		newKeyedPool(t, "s1", serverMeta("srv-1"), key),
		newKeyedPool(t, "s2", serverMeta("srv-2"), key),
		newKeyedPool(t, "a1", agentMeta("host-1"), key),
	}
	for _, p := range pools[1:] {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		n, err := p.Join(ctx, []string{pools[0].LocalAddr()})
		cancel()
		if err != nil || n != 1 {
			t.Fatalf("join: n=%d err=%v", n, err)
		}
	}
	waitAllAlive(t, pools, len(pools))
	return pools
}

func waitAllAlive(t *testing.T, pools []*Pool, n int) {
	t.Helper()
	for _, p := range pools {
		testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
			return countStatus(p, StatusAlive) == n, summary(p)
		})
	}
}

// waitKeyring waits until every pool's keyring is exactly keys with
// primary first.
func waitKeyring(t *testing.T, pools []*Pool, primary []byte, keys ...[]byte) {
	t.Helper()
	for _, p := range pools {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			s, err := p.ListKeys()
			if err != nil {
				return false, err.Error()
			}
			ok := bytes.Equal(s.Primary, primary) && len(s.Keys) == len(keys)
			for _, k := range keys {
				ok = ok && containsKey(s.Keys, k)
			}
			return ok, fmt.Sprintf("%s: %d keys, version %d from %s, primary ok=%v",
				p.cfg.NodeName, len(s.Keys), s.Version, s.Origin, bytes.Equal(s.Primary, primary))
		})
	}
}

func TestEncryptedPoolSameKey(t *testing.T) {
	key := newKey(t)
	pools := keyedCluster(t, key)
	s, err := pools[2].ListKeys()
	if err != nil || len(s.Keys) != 1 || !bytes.Equal(s.Primary, key) || s.Version != 0 {
		t.Fatalf("ListKeys = %+v, %v", s, err)
	}
}

func TestWrongKeyCannotJoin(t *testing.T) {
	pools := keyedCluster(t, newKey(t))
	cases := []struct {
		name string
		key  []byte
	}{
		{"wrong key", newKey(t)},
		{"no key", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			intruder := newKeyedPool(t, "intruder-"+strings.ReplaceAll(tc.name, " ", "-"), agentMeta("evil"), tc.key)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if n, err := intruder.Join(ctx, []string{pools[0].LocalAddr()}); err == nil {
				t.Fatalf("join with %s succeeded (n=%d)", tc.name, n)
			}
			// Nobody lets it in, and it learns nobody.
			for _, p := range pools {
				for _, m := range p.Members() {
					if m.Name == intruder.cfg.NodeName {
						t.Errorf("%s sees the intruder", p.cfg.NodeName)
					}
				}
			}
			if n := len(intruder.Members()); n != 1 {
				t.Errorf("intruder sees %d members", n)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newK := newKey(t), newKey(t)
	pools := keyedCluster(t, oldKey)
	sub, cancel := pools[0].Subscribe(256)
	defer cancel()

	// 1. install on one member: everyone learns the key, old stays primary.
	if err := pools[0].InstallKey(newK); err != nil {
		t.Fatal(err)
	}
	waitKeyring(t, pools, oldKey, oldKey, newK)
	// 2. use, from another member.
	if err := pools[1].UseKey(newK); err != nil {
		t.Fatal(err)
	}
	waitKeyring(t, pools, newK, oldKey, newK)
	// 3. remove the old key, from the agent.
	if err := pools[2].RemoveKey(oldKey); err != nil {
		t.Fatal(err)
	}
	waitKeyring(t, pools, newK, newK)
	waitAllAlive(t, pools, len(pools))
	// Nobody was suspected or lost on the way.
	for {
		select {
		case ev := <-sub:
			if ev.Member.Status != StatusAlive {
				t.Errorf("event during rotation: %s %s/%s", ev.Type, ev.Member.Name, ev.Member.Status)
			}
			continue
		default:
		}
		break
	}

	// The pool now admits the new key only.
	joiner := newKeyedPool(t, "a2", agentMeta("host-2"), newK)
	ctx, cancelJoin := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancelJoin()
	if _, err := joiner.Join(ctx, []string{pools[0].LocalAddr()}); err != nil {
		t.Fatalf("join with the new key: %v", err)
	}
	stale := newKeyedPool(t, "a3", agentMeta("host-3"), oldKey)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel2()
	if _, err := stale.Join(ctx2, []string{pools[0].LocalAddr()}); err == nil {
		t.Fatal("join with the removed key succeeded")
	}
	// The joiner received the rotated keyring's version through push/pull.
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		s, _ := joiner.ListKeys()
		return s.Version == 3, fmt.Sprintf("joiner keyring version %d", s.Version)
	})
}

func TestKeyringErrors(t *testing.T) {
	plain := newTestPool(t, "plain", agentMeta("h"))
	for name, err := range map[string]error{
		"list":    func() error { _, err := plain.ListKeys(); return err }(),
		"install": plain.InstallKey(newKey(t)),
		"use":     plain.UseKey(newKey(t)),
		"remove":  plain.RemoveKey(newKey(t)),
	} {
		if !errors.Is(err, ErrNoEncryption) {
			t.Errorf("%s without encryption: %v", name, err)
		}
	}

	key := newKey(t)
	p := newKeyedPool(t, "keyed", agentMeta("h"), key)
	if err := p.RemoveKey(key); err == nil {
		t.Error("removed the primary key")
	}
	if err := p.UseKey(newKey(t)); err == nil {
		t.Error("used a key that is not installed")
	}
	if err := p.InstallKey([]byte("short")); err == nil {
		t.Error("installed a 5-byte key")
	}
	// Failed changes do not bump the version.
	if s, _ := p.ListKeys(); s.Version != 0 || len(s.Keys) != 1 {
		t.Errorf("after failures: %+v", s)
	}
	// A no-op change is fine and versioned (it is gossiped again).
	if err := p.InstallKey(key); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := p.InstallKey(newKey(t)); !errors.Is(err, ErrShutdown) {
		t.Errorf("after shutdown: %v", err)
	}
}

// merge: newer states are adopted whole, older or equal ones ignored,
// malformed ones refused by the decoder.
func TestKeyringMerge(t *testing.T) {
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	km, err := newKeyManager(k1)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		state   KeyringState
		adopted bool
		primary []byte
		n       int
	}{
		{"newer", KeyringState{Keys: [][]byte{k2, k1}, Primary: k2, Version: 2, Origin: "b"}, true, k2, 2},
		{"older", KeyringState{Keys: [][]byte{k3}, Primary: k3, Version: 1, Origin: "z"}, false, k2, 2},
		{"same version, lower origin", KeyringState{Keys: [][]byte{k3}, Primary: k3, Version: 2, Origin: "a"}, false, k2, 2},
		{"same version, higher origin", KeyringState{Keys: [][]byte{k3, k2}, Primary: k3, Version: 2, Origin: "c"}, true, k3, 2},
		{"removal", KeyringState{Keys: [][]byte{k3}, Primary: k3, Version: 5, Origin: "a"}, true, k3, 1},
	}
	for _, s := range steps {
		// Through the wire format, as from the pool.
		decoded, err := decodeKeyring(encodeKeyring(s.state))
		if err != nil {
			t.Fatalf("%s: decode: %v", s.name, err)
		}
		adopted, err := km.merge(decoded)
		if err != nil || adopted != s.adopted {
			t.Fatalf("%s: adopted=%v err=%v", s.name, adopted, err)
		}
		km.mu.Lock()
		got := km.stateLocked()
		km.mu.Unlock()
		if !bytes.Equal(got.Primary, s.primary) || len(got.Keys) != s.n {
			t.Fatalf("%s: state %d keys, primary ok=%v", s.name, len(got.Keys), bytes.Equal(got.Primary, s.primary))
		}
	}
	bad := [][]byte{
		nil,
		[]byte("K{"),
		[]byte(`K{"v":9,"o":"x","k":[],"p":""}`),
		encodeKeyring(KeyringState{Keys: [][]byte{k1}, Primary: k2, Version: 9}), // primary not listed
		encodeKeyring(KeyringState{Keys: [][]byte{[]byte("short")}, Primary: []byte("short"), Version: 9}),
	}
	for i, b := range bad {
		if _, err := decodeKeyring(b); err == nil {
			t.Errorf("bad message %d decoded", i)
		}
	}
}
