package raftfsm_test

// Benchmarks of the replicated state against the history it holds: the cost
// of one applied entry and of a snapshot with 10, 100 and 1,000 finished
// releases of 1,000 hosts each retained. They use only the FSM's public
// API, so the same file runs against older versions of the package for
// comparison (docs/performance.md).
//
//	go test -run '^$' -bench . -benchtime 2000x ./internal/raftfsm/
//
// RW_BENCH_RELEASES=10,100 limits the sizes (1,000 x 1,000 needs ~2 GB).

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

const benchHosts = 1000

type benchFleet struct {
	f     *raftfsm.FSM
	index uint64
	hosts []string
	// step counts progress entries applied so far (they continue across
	// the benchmark's runs).
	step int
}

var (
	benchMu     sync.Mutex
	benchFleets = map[int]*benchFleet{}
)

func (bf *benchFleet) apply(tb testing.TB, t raftfsm.MessageType, m proto.Message) {
	data, err := raftfsm.Encode(t, m)
	if err != nil {
		tb.Fatal(err)
	}
	bf.index++
	if _, err := bf.f.ApplyEntry(bf.index, data); err != nil {
		tb.Fatalf("apply %v: %v", t, err)
	}
}

// fleet returns a state holding n finished (succeeded) releases of app
// "api", each rolled to all benchHosts hosts and finalized, and one active
// release "live" of app "web" with every host assigned. Built once per n.
func fleet(tb testing.TB, n int) *benchFleet {
	benchMu.Lock()
	defer benchMu.Unlock()
	if bf := benchFleets[n]; bf != nil {
		return bf
	}
	bf := &benchFleet{f: raftfsm.New(nil)}
	now := int64(1_780_000_000_000_000_000)
	up := &v1.UpsertHostsCommand{TimeUnixNano: now}
	for i := range benchHosts {
		id := fmt.Sprintf("host-%04d", i)
		bf.hosts = append(bf.hosts, id)
		up.Hosts = append(up.Hosts, &v1.Host{Id: id, Cell: "eu-1", Region: "eu", Address: id + ":7070", LastContactUnixNano: now})
	}
	bf.apply(tb, raftfsm.UpsertHosts, up)
	release := func(id, app string, at int64) {
		bf.apply(tb, raftfsm.SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: at, Actor: "bench", Release: &v1.Release{
			Id: id, Spec: &v1.ReleaseSpec{Name: id, App: app, Version: id},
			Phases: []*v1.Phase{{Index: 0, Hosts: bf.hosts, Cells: []string{"eu-1"}, BakeMs: 60_000}}}})
		bf.apply(tb, raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: at, ReleaseId: id,
			State: v1.ReleaseState_RELEASE_STATE_RUNNING, CurrentPhase: -1})
	}
	assign := func(id, app string, gen uint64, at int64) {
		c := &v1.CreateAssignmentsCommand{TimeUnixNano: at}
		for _, h := range bf.hosts {
			c.Assignments = append(c.Assignments, &v1.Assignment{Host: h, App: app, Generation: gen, ReleaseId: id, Version: id, TargetSlot: v1.Slot_SLOT_GREEN})
		}
		bf.apply(tb, raftfsm.CreateAssignments, c)
	}
	for r := range n {
		id := fmt.Sprintf("api-%04d", r)
		at := now + int64(r+1)*1_000_000_000
		release(id, "api", at)
		assign(id, "api", uint64(r+1), at)
		for _, st := range []v1.AssignmentState{v1.AssignmentState_ASSIGNMENT_STATE_STAGING, v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
			v1.AssignmentState_ASSIGNMENT_STATE_BAKING, v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED} {
			u := &v1.UpdateAssignmentsCommand{TimeUnixNano: at}
			for _, h := range bf.hosts {
				u.Updates = append(u.Updates, &v1.AssignmentUpdate{Host: h, App: "api", Generation: uint64(r + 1), State: st})
			}
			bf.apply(tb, raftfsm.UpdateAssignments, u)
		}
		bf.apply(tb, raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: at, ReleaseId: id,
			State: v1.ReleaseState_RELEASE_STATE_SUCCEEDED, CurrentPhase: -1, Reason: "bench"})
	}
	at := now + int64(n+1)*1_000_000_000
	release("live", "web", at)
	assign("live", "web", 1, at)
	benchFleets[n] = bf
	return bf
}

// progress is the next agent progress entry of the active release: one
// host, one legal step (assigned -> staging -> ... -> finalized).
func (bf *benchFleet) progress() *v1.UpdateAssignmentsCommand {
	states := []v1.AssignmentState{v1.AssignmentState_ASSIGNMENT_STATE_STAGING, v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
		v1.AssignmentState_ASSIGNMENT_STATE_BAKING, v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, v1.AssignmentState_ASSIGNMENT_STATE_FINALIZED}
	i := bf.step
	bf.step++
	st := states[min(i/benchHosts, len(states)-1)]
	return &v1.UpdateAssignmentsCommand{TimeUnixNano: int64(i), Updates: []*v1.AssignmentUpdate{
		{Host: bf.hosts[i%benchHosts], App: "web", Generation: 1, State: st}}}
}

func benchSizes(b *testing.B) []int {
	sizes := []int{10, 100, 1000}
	if env := os.Getenv("RW_BENCH_RELEASES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("RW_BENCH_RELEASES: %q is not a number", f)
			}
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// eachSize runs body as a sub-benchmark per fleet size, timing only body.
func eachSize(b *testing.B, body func(b *testing.B, bf *benchFleet)) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("releases=%d", n), func(b *testing.B) {
			bf := fleet(b, n)
			// Building the fleet leaves a GC cycle of the whole state
			// (~2 GB at 1,000 releases) in flight; collect it here so the
			// timed part measures the entry, not that cycle's marking.
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			body(b, bf)
		})
	}
}

// BenchmarkApplyHeartbeat: one host's heartbeat (UpsertHosts, last contact).
func BenchmarkApplyHeartbeat(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		for i := range b.N {
			bf.apply(b, raftfsm.UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: int64(i), Hosts: []*v1.Host{
				{Id: bf.hosts[i%benchHosts], LastContactUnixNano: int64(1_790_000_000_000_000_000 + i)}}})
		}
	})
}

// BenchmarkLeaderProgressEntry: what the leader spends on one agent
// progress entry of the active release: applying it, then the reads the
// release's orchestrator goroutine makes when it wakes (its release, its
// assignments, its events).
func BenchmarkLeaderProgressEntry(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		s := bf.f.State()
		for range b.N {
			bf.apply(b, raftfsm.UpdateAssignments, bf.progress())
			if s.Release("live") == nil || len(s.ReleaseAssignments("live")) != benchHosts {
				b.Fatal("live release lost")
			}
			s.Events("live", 0, 0)
		}
	})
}

type discardSink struct{ io.Writer }

func (discardSink) ID() string    { return "discard" }
func (discardSink) Cancel() error { return nil }
func (discardSink) Close() error  { return nil }

// BenchmarkSnapshotCapture: FSM.Snapshot alone, what raft's FSM goroutine
// waits for (Apply is blocked meanwhile).
func BenchmarkSnapshotCapture(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		for range b.N {
			snap, err := bf.f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			snap.Release()
		}
	})
}

// BenchmarkSnapshotPersist: Snapshot and Persist to io.Discard; Persist
// grows with the data it writes.
func BenchmarkSnapshotPersist(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		for range b.N {
			snap, err := bf.f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			if err := snap.Persist(discardSink{io.Discard}); err != nil {
				b.Fatal(err)
			}
			snap.Release()
		}
	})
}

// readBench runs read as a sub-benchmark reporting allocations; read
// returns false when it did not find the live release's 1,000 hosts.
func readBench(b *testing.B, name string, read func() bool) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if !read() {
				b.Fatal("the live release's assignments were not all found")
			}
		}
	})
}

// BenchmarkLiveAssignments: what the orchestrator reads on each wake while
// a release finalizes or rolls back: the current assignment of each of the
// release's 1,000 hosts. "composed" is how it read them before
// LiveAssignments (ReleaseAssignments, then Assignment per host).
func BenchmarkLiveAssignments(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		s := bf.f.State()
		readBench(b, "LiveAssignments", func() bool { return len(s.LiveAssignments("live")) == benchHosts })
		readBench(b, "composed", func() bool {
			n, seen := 0, map[string]bool{}
			for _, a := range s.ReleaseAssignments("live") {
				if cur := s.Assignment(a.GetHost(), a.GetApp()); !seen[a.GetHost()] && cur.GetReleaseId() == "live" {
					seen[a.GetHost()] = true
					n++
				}
			}
			return n == benchHosts
		})
	})
}

// BenchmarkPhaseAssignments: what the orchestrator reads for a phase's
// hosts on every wake while the phase deploys or bakes: the current
// assignment of each of 1,000 hosts, from one view (Assignments) or one
// read per host (Assignment, as before; assignMissing also copied each
// host's record, Host).
func BenchmarkPhaseAssignments(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		s := bf.f.State()
		readBench(b, "Assignments", func() bool { return !slices.Contains(s.Assignments("web", bf.hosts), nil) })
		readBench(b, "per-host", func() bool {
			for _, h := range bf.hosts {
				if s.Assignment(h, "web") == nil {
					return false
				}
			}
			return true
		})
	})
}

// BenchmarkApplyProgressBatch: agent progress entries as the leader's
// host writer makes them during a big phase, for benchHosts hosts (the
// writer takes up to 1,024 updates an entry). Every server applies each
// such entry, and the writer waits for the leader's apply before it
// writes the next one. "one-step" entries move every host one step;
// "three-steps" entries carry SWITCHED, BAKING and HEALTHY of each host
// (an agent reports them back to back, so they wait in the writer's batch
// together), 3,000 updates. ns/op is per entry.
func BenchmarkApplyProgressBatch(b *testing.B) {
	entry := func(steps ...v1.AssignmentState) []byte {
		u := &v1.UpdateAssignmentsCommand{TimeUnixNano: int64(steps[0])}
		for h := range benchHosts {
			for _, st := range steps {
				u.Updates = append(u.Updates, &v1.AssignmentUpdate{Host: fmt.Sprintf("host-%04d", h), App: "web", Generation: 1, State: st})
			}
		}
		data, err := raftfsm.Encode(raftfsm.UpdateAssignments, u)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	staging, switched := v1.AssignmentState_ASSIGNMENT_STATE_STAGING, v1.AssignmentState_ASSIGNMENT_STATE_SWITCHED
	baking, healthy := v1.AssignmentState_ASSIGNMENT_STATE_BAKING, v1.AssignmentState_ASSIGNMENT_STATE_HEALTHY
	for _, c := range []struct {
		name    string
		entries [][]byte // one assignment's happy path, in order
		timed   []bool   // which of them are measured
	}{
		{"one-step", [][]byte{entry(staging), entry(switched), entry(baking), entry(healthy)}, []bool{true, true, true, true}},
		{"three-steps", [][]byte{entry(staging), entry(switched, baking, healthy)}, []bool{false, true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var bf *benchFleet
			b.ReportAllocs()
			apply := func(data []byte) int {
				bf.index++
				res, err := bf.f.ApplyEntry(bf.index, data)
				if err != nil {
					b.Fatal(err)
				}
				return res.Applied
			}
			i := 0
			for b.Loop() {
				if i%len(c.entries) == 0 {
					// A fresh release of benchHosts assigned hosts: the
					// entries use up each assignment's happy path.
					b.StopTimer()
					benchMu.Lock()
					delete(benchFleets, 0)
					benchMu.Unlock()
					bf = fleet(b, 0)
					runtime.GC()
					b.StartTimer()
				}
				for !c.timed[i%len(c.entries)] {
					b.StopTimer()
					apply(c.entries[i%len(c.entries)])
					i++
					b.StartTimer()
				}
				data := c.entries[i%len(c.entries)]
				if n := apply(data); n%benchHosts != 0 || n == 0 {
					b.Fatalf("entry applied %d updates, want all", n)
				}
				i++
			}
		})
	}
}

// BenchmarkCensus: what a Prometheus scrape of a coordinator reads about
// the state (1,000 hosts, two apps each): Census, or every host copied
// and each host's assignments read and copied in a read of its own, as
// the metrics collector did before.
func BenchmarkCensus(b *testing.B) {
	eachSize(b, func(b *testing.B, bf *benchFleet) {
		s := bf.f.State()
		readBench(b, "Census", func() bool { return s.Census().Hosts == benchHosts })
		readBench(b, "copies", func() bool {
			hosts, n := s.Hosts(), 0
			for _, h := range hosts {
				n += len(s.HostAssignments(h.GetId()))
			}
			return len(hosts) == benchHosts && n == 2*benchHosts
		})
	})
}
