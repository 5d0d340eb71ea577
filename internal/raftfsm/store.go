package raftfsm

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/go-memdb"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// The state lives in hashicorp/go-memdb, as Nomad's and Consul's do: every
// table index is an immutable radix tree, so a read transaction is a
// point-in-time view taken in O(1) (what FSM.Snapshot needs), an apply
// copies only the paths it changes, and every lookup can hand out a watch
// channel that is closed when that part of the tree changes (per-release
// notification). Stored objects are never modified: an update stores a new
// clone. Readers outside the package get clones of single records, so they
// can never alias or mutate state.

// Table names.
const (
	tHost    = "host"
	tCell    = "cell"
	tApp     = "app"
	tRelease = "release"
	// tHist holds every assignment, all generations: (host, app, generation).
	tHist = "assignment"
	// tCur holds the current (newest) assignment of each (host, app); the
	// object is the same one tHist holds for that generation.
	tCur    = "current"
	tEvent  = "event"
	tFreeze = "freeze"
	tACL    = "acl"
	// tNotify holds one *v1.NotifyCursor per notification target.
	tNotify = "notify"
	// tMeta holds the one *meta record.
	tMeta = "meta"
	// tChain holds the release chains by name.
	tChain = "chain"
)

// meta holds the state's scalars. Like every stored object it is replaced,
// never modified.
type meta struct {
	globalFreeze         bool
	freezeReason         string
	aclBootstrapUnixNano int64
}

// key builds order-preserving index keys: a string is its bytes with 0x00
// escaped as 0x00 0xFF and ended by 0x00 0x01, so keys of (a, b) tuples sort
// as the tuples do (and as Go compares strings); a uint64 is 8 big-endian
// bytes. memdb's own indexers do not fit: its string index ends strings with
// a bare 0x00 (wrong order for strings holding 0x00) and its uint index is
// a varint (not ordered), and snapshots must list records in exactly the
// order the map-based state did.
type key []byte

func (k key) str(s string) key {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			k = append(k, 0, 0xFF)
		} else {
			k = append(k, s[i])
		}
	}
	return append(k, 0, 1)
}

func (k key) u64(n uint64) key { return binary.BigEndian.AppendUint64(k, n) }

// seq appends n as 16 bytes of one nibble each, most significant first:
// ordered as n is, like u64, but no radix node over these keys has more
// than 16 children. Event seqs are dense, so with u64 keys the node above
// the newest events held up to 256 of them, and every entry that added an
// event copied it (~6 KiB) in the event index and again under each
// release it touched: ~17 KiB and 100 allocations per event while 20
// releases ran, ~8 KiB with seq keys (BenchmarkAppendEventsManyReleases).
// Index keys live only in memory (snapshots and the log hold the events),
// so their encoding is free to change.
func (k key) seq(n uint64) key {
	for shift := 60; shift >= 0; shift -= 4 {
		k = append(k, byte(n>>shift)&0xF)
	}
	return k
}

// seqLen is the length of a seq key part.
const seqLen = 16

func strKey(s string) key { return key(nil).str(s) }

// keyFor returns an empty key with room for strs (and u64s uint64s), so
// building a tuple key allocates once: index keys are built for the old
// and the new object of every write, and growing them piece by piece was
// a fifth of an apply's allocations (BenchmarkApplyProgressBatch).
func keyFor(u64s int, strs ...string) key {
	n := 8 * u64s
	for _, s := range strs {
		n += len(s) + 2
	}
	return make(key, 0, n)
}

// keyIndex is a memdb indexer over a key function. Lookups pass one
// already-built key ([]byte), exact or prefix.
type keyIndex struct{ of func(obj any) key }

func (i keyIndex) FromObject(obj any) (bool, []byte, error) { return true, i.of(obj), nil }

func (keyIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("raftfsm: index lookup takes one key, got %d", len(args))
	}
	switch k := args[0].(type) {
	case key:
		return k, nil
	case []byte:
		return k, nil
	}
	return nil, fmt.Errorf("raftfsm: index key must be bytes, got %T", args[0])
}

func (i keyIndex) PrefixFromArgs(args ...any) ([]byte, error) { return i.FromArgs(args...) }

func index(name string, of func(obj any) key) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: true, Indexer: keyIndex{of}}
}

func table(name string, idx ...*memdb.IndexSchema) *memdb.TableSchema {
	t := &memdb.TableSchema{Name: name, Indexes: map[string]*memdb.IndexSchema{}}
	for _, i := range idx {
		t.Indexes[i.Name] = i
	}
	return t
}

func histKey(a *v1.Assignment) key {
	return keyFor(1, a.GetHost(), a.GetApp()).str(a.GetHost()).str(a.GetApp()).u64(a.GetGeneration())
}

// curKey is the key of (host, app) in tCur.
func curKey(host, app string) key { return keyFor(0, host, app).str(host).str(app) }

var schema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{}}

func init() {
	for _, t := range []*memdb.TableSchema{
		table(tHost, index("id", func(o any) key { return strKey(o.(*v1.Host).GetId()) })),
		table(tCell, index("id", func(o any) key { return strKey(o.(*v1.Cell).GetName()) })),
		table(tApp, index("id", func(o any) key { return strKey(o.(*v1.App).GetName()) })),
		table(tRelease,
			index("id", func(o any) key { return strKey(o.(*v1.Release).GetId()) }),
			index("app", func(o any) key { r := o.(*v1.Release); return strKey(r.GetSpec().GetApp()).str(r.GetId()) })),
		table(tHist,
			index("id", func(o any) key { return histKey(o.(*v1.Assignment)) }),
			index("release", func(o any) key {
				a := o.(*v1.Assignment)
				return keyFor(1, a.GetReleaseId(), a.GetHost(), a.GetApp()).
					str(a.GetReleaseId()).str(a.GetHost()).str(a.GetApp()).u64(a.GetGeneration())
			})),
		table(tCur, index("id", func(o any) key { a := o.(*v1.Assignment); return curKey(a.GetHost(), a.GetApp()) })),
		table(tEvent,
			index("id", func(o any) key { return make(key, 0, seqLen).seq(o.(*v1.Event).GetSeq()) }),
			index("release", func(o any) key {
				e := o.(*v1.Event)
				return keyFor(2, e.GetReleaseId()).str(e.GetReleaseId()).seq(e.GetSeq())
			})),
		table(tFreeze, index("id", func(o any) key { return strKey(o.(*v1.FreezeWindow).GetId()) })),
		table(tACL, index("id", func(o any) key { return strKey(o.(*v1.ACLToken).GetAccessorId()) })),
		table(tMeta, index("id", func(any) key { return key("m") })),
		table(tNotify, index("id", func(o any) key { return strKey(o.(*v1.NotifyCursor).GetTarget()) })),
		table(tChain, index("id", func(o any) key { return strKey(o.(*v1.Chain).GetName()) })),
	} {
		schema.Tables[t.Name] = t
	}
	if err := schema.Validate(); err != nil {
		panic(fmt.Sprintf("raftfsm: memdb schema: %v", err))
	}
}

func newDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(schema)
	if err != nil { // only an invalid schema fails, checked at init
		panic(fmt.Sprintf("raftfsm: memdb: %v", err))
	}
	return db
}

// view is one memdb transaction: a read-only point-in-time view, or, inside
// applyCommand, the write transaction of one entry. Objects it returns are
// the stored ones: code in this package treats them as read-only and
// stores a clone to change one.
type view struct{ tx *memdb.Txn }

// first returns the object of table whose id key is k, or the zero T.
func first[T any](v *view, tbl string, k key) T {
	o, err := v.tx.First(tbl, "id", k)
	if err != nil {
		panic(fmt.Sprintf("raftfsm: read %s: %v", tbl, err)) // schema error: a programming mistake
	}
	t, _ := o.(T)
	return t
}

// each calls fn with every object of tbl whose idx key starts with prefix
// (nil: all), in key order, until fn returns false. It returns the watch
// channel of that range.
func each[T any](v *view, tbl, idx string, prefix key, fn func(T) bool) <-chan struct{} {
	var it memdb.ResultIterator
	var err error
	if prefix == nil {
		it, err = v.tx.Get(tbl, idx)
	} else {
		it, err = v.tx.Get(tbl, idx+"_prefix", prefix)
	}
	if err != nil {
		panic(fmt.Sprintf("raftfsm: scan %s.%s: %v", tbl, idx, err))
	}
	for o := it.Next(); o != nil; o = it.Next() {
		if !fn(o.(T)) {
			break
		}
	}
	return it.WatchCh()
}

// all returns every object of tbl whose idx key starts with prefix.
func all[T any](v *view, tbl, idx string, prefix key) []T {
	var out []T
	each(v, tbl, idx, prefix, func(t T) bool { out = append(out, t); return true })
	return out
}

func (v *view) put(tbl string, obj any) {
	if err := v.tx.Insert(tbl, obj); err != nil {
		panic(fmt.Sprintf("raftfsm: store %s: %v", tbl, err))
	}
}

func (v *view) del(tbl string, obj any) {
	if err := v.tx.Delete(tbl, obj); err != nil {
		panic(fmt.Sprintf("raftfsm: delete from %s: %v", tbl, err))
	}
}

func (v *view) host(id string) *v1.Host       { return first[*v1.Host](v, tHost, strKey(id)) }
func (v *view) cell(name string) *v1.Cell     { return first[*v1.Cell](v, tCell, strKey(name)) }
func (v *view) app(name string) *v1.App       { return first[*v1.App](v, tApp, strKey(name)) }
func (v *view) release(id string) *v1.Release { return first[*v1.Release](v, tRelease, strKey(id)) }
func (v *view) freeze(id string) *v1.FreezeWindow {
	return first[*v1.FreezeWindow](v, tFreeze, strKey(id))
}
func (v *view) chain(name string) *v1.Chain      { return first[*v1.Chain](v, tChain, strKey(name)) }
func (v *view) aclToken(acc string) *v1.ACLToken { return first[*v1.ACLToken](v, tACL, strKey(acc)) }

// current returns the newest assignment of app on host, or nil.
func (v *view) current(host, app string) *v1.Assignment {
	return first[*v1.Assignment](v, tCur, curKey(host, app))
}

func (v *view) meta() meta {
	if m := first[*meta](v, tMeta, key("m")); m != nil {
		return *m
	}
	return meta{}
}

func (v *view) setMeta(m meta) { v.put(tMeta, &m) }

// putAssignment stores a (new or changed) assignment as its (host, app)'s
// newest generation.
func (v *view) putAssignment(a *v1.Assignment) {
	v.put(tHist, a)
	v.put(tCur, a)
}

// lastEvent returns the event with the highest seq, or nil.
func (v *view) lastEvent() *v1.Event {
	o, err := v.tx.Last(tEvent, "id")
	if err != nil {
		panic(fmt.Sprintf("raftfsm: read events: %v", err))
	}
	e, _ := o.(*v1.Event)
	return e
}

// nextSeq is the seq the next audit event gets. Derived from the log
// itself, so it needs no separate persisted counter; pruning always leaves
// the newest event (its own), so seqs never go back.
func (v *view) nextSeq() uint64 {
	if e := v.lastEvent(); e != nil {
		return e.GetSeq() + 1
	}
	return 1
}

// appendEvent records an audit event, assigning its seq.
func (v *view) appendEvent(e *v1.Event) {
	e.Seq = v.nextSeq()
	v.put(tEvent, e)
}

// eventsFrom calls fn with the events of one release ("" for all) whose
// seq is at least from, in seq order, until fn returns false.
func (v *view) eventsFrom(releaseID string, from uint64, fn func(*v1.Event) bool) {
	var it memdb.ResultIterator
	var err error
	var prefix key
	if releaseID == "" {
		it, err = v.tx.LowerBound(tEvent, "id", key(nil).seq(from))
	} else {
		prefix = strKey(releaseID)
		it, err = v.tx.LowerBound(tEvent, "release", append(bytes.Clone(prefix), key(nil).seq(from)...))
	}
	if err != nil {
		panic(fmt.Sprintf("raftfsm: read events: %v", err))
	}
	for o := it.Next(); o != nil; o = it.Next() {
		e := o.(*v1.Event)
		if releaseID != "" && e.GetReleaseId() != releaseID {
			return
		}
		if !fn(e) {
			return
		}
	}
}

// eachRecord calls fn with every object in the canonical snapshot order:
// the order, and so the bytes, the map-based state wrote.
func (v *view) eachRecord(fn func(recordType, proto.Message) error) error {
	var err error
	emit := func(t recordType) func(m proto.Message) bool {
		return func(m proto.Message) bool { err = fn(t, m); return err == nil }
	}
	each(v, tHost, "id", nil, func(h *v1.Host) bool { return emit(recHost)(h) })
	if err != nil {
		return err
	}
	each(v, tCell, "id", nil, func(c *v1.Cell) bool { return emit(recCell)(c) })
	if err != nil {
		return err
	}
	each(v, tApp, "id", nil, func(a *v1.App) bool { return emit(recApp)(a) })
	if err != nil {
		return err
	}
	each(v, tRelease, "id", nil, func(r *v1.Release) bool { return emit(recRelease)(r) })
	if err != nil {
		return err
	}
	each(v, tHist, "id", nil, func(a *v1.Assignment) bool { return emit(recAssignment)(a) })
	if err != nil {
		return err
	}
	each(v, tEvent, "id", nil, func(e *v1.Event) bool { return emit(recEvent)(e) })
	if err != nil {
		return err
	}
	each(v, tFreeze, "id", nil, func(w *v1.FreezeWindow) bool { return emit(recFreeze)(w) })
	if err != nil {
		return err
	}
	m := v.meta()
	if err := fn(recGlobalFreeze, &v1.SetGlobalFreezeCommand{On: m.globalFreeze, Reason: m.freezeReason}); err != nil {
		return err
	}
	if m.aclBootstrapUnixNano != 0 {
		if err := fn(recACLBootstrap, &v1.ACLBootstrapCommand{TimeUnixNano: m.aclBootstrapUnixNano}); err != nil {
			return err
		}
	}
	each(v, tACL, "id", nil, func(t *v1.ACLToken) bool { return emit(recACLToken)(t) })
	if err != nil {
		return err
	}
	each(v, tNotify, "id", nil, func(c *v1.NotifyCursor) bool { return emit(recNotifyCursor)(c) })
	if err != nil {
		return err
	}
	each(v, tChain, "id", nil, func(c *v1.Chain) bool { return emit(recChain)(c) })
	return err
}
