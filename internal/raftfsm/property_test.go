package raftfsm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// Small pools make random commands collide on ids often, so the generator
// produces a useful mix of accepted and rejected commands.
var (
	poolHosts    = []string{"h0", "h1", "h2", "h3", ""}
	poolApps     = []string{"a0", "a1"}
	poolReleases = []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", ""}
	poolCells    = []string{"c0", "c1", ""}
	poolCrit     = []string{"low", "medium", "high", "critical", "bogus"}
	poolFreezes  = []string{"f0", "f1", ""}
	poolTokens   = []string{"t0", "t1", "t2", ""}
	poolHashes   = []string{strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64), "AB", ""}
)

// prefer picks from likely (ids or states that exist now) most of the time
// and from any otherwise, so both accepted and rejected commands show up.
func prefer[T any](t *rapid.T, label string, likely, any []T) T {
	if len(likely) > 0 && rapid.IntRange(0, 4).Draw(t, label+"_any") != 4 {
		return rapid.SampledFrom(likely).Draw(t, label)
	}
	return rapid.SampledFrom(any).Draw(t, label)
}

func allEnum[E ~int32](max int32) []E {
	out := make([]E, 0, max+1)
	for v := range max + 1 {
		out = append(out, E(v))
	}
	return out
}

// genCmd draws a random command, biased towards ids, generations and
// transitions that are legal in s so that deep states are reached.
func genCmd(s *State, now int64) *rapid.Generator[cmd] {
	return rapid.Custom(func(t *rapid.T) cmd {
		var hostIDs, releaseIDs []string
		for _, h := range s.Hosts() {
			hostIDs = append(hostIDs, h.GetId())
		}
		// Live releases are where the interesting transitions happen.
		for _, r := range s.Releases("", rsPending, rsRunning, rsPaused, rsAwaiting, rsRollBack, v1.ReleaseState_RELEASE_STATE_WATCHING) {
			releaseIDs = append(releaseIDs, r.GetId())
		}
		host := prefer(t, "host", hostIDs, poolHosts)
		rel := prefer(t, "release", releaseIDs, poolReleases)
		app := rapid.SampledFrom(poolApps).Draw(t, "app")
		r := s.Release(rel)
		if r != nil && rapid.IntRange(0, 4).Draw(t, "release_app") != 4 {
			app = r.GetSpec().GetApp()
		}
		gen := func(host string, delta int64) uint64 {
			cur := int64(s.Assignment(host, app).GetGeneration())
			if rapid.IntRange(0, 3).Draw(t, "gen_exact") != 3 {
				return uint64(cur + delta)
			}
			return uint64(max(0, cur+rapid.Int64Range(-1, 2).Draw(t, "gen_delta")))
		}
		// Deleting hosts and cells is rare so assignments have hosts to run on.
		kind := rapid.SampledFrom([]int{0, 0, 1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12, 13, 13, 14, 14, 15, 15, 15, 16, 16, 17, 17, 18, 19, 20, 20, 21, 22}).Draw(t, "kind")
		if kind == 1 && rapid.IntRange(0, 3).Draw(t, "really_delete") != 3 {
			kind = 0
		}
		switch kind {
		case 0:
			c := &v1.UpsertHostsCommand{TimeUnixNano: now}
			for _, h := range rapid.SliceOfN(rapid.SampledFrom(poolHosts), 1, 3).Draw(t, "hosts") {
				c.Hosts = append(c.Hosts, &v1.Host{Id: h, Cell: rapid.SampledFrom(poolCells).Draw(t, "cell"),
					LastContactUnixNano: rapid.Int64Range(0, now).Draw(t, "contact")})
			}
			return cmd{UpsertHosts, c}
		case 1:
			return cmd{DeleteHost, &v1.DeleteHostCommand{TimeUnixNano: now, Id: host}}
		case 2:
			return cmd{SetCell, &v1.SetCellCommand{TimeUnixNano: now, Cell: &v1.Cell{
				Name: rapid.SampledFrom(poolCells).Draw(t, "cell"), Risk: rapid.Int32Range(-1, 3).Draw(t, "risk"),
				Criticality: rapid.SampledFrom(poolCrit).Draw(t, "crit"), Users: rapid.Int64Range(-1, 100).Draw(t, "users")}}}
		case 3:
			return cmd{DeleteCell, &v1.DeleteCellCommand{TimeUnixNano: now, Name: rapid.SampledFrom(poolCells).Draw(t, "cell")}}
		case 4, 5:
			r := releaseMsg(rapid.SampledFrom(poolReleases).Draw(t, "new_release"), app, rapid.IntRange(0, 3).Draw(t, "phases"))
			if rapid.IntRange(0, 9).Draw(t, "bad_state") == 9 {
				r.State = rapid.SampledFrom(allEnum[v1.ReleaseState](9)).Draw(t, "initial_state")
			}
			return cmd{SubmitRelease, &v1.SubmitReleaseCommand{TimeUnixNano: now, Release: r}}
		case 6, 7, 8:
			to := prefer(t, "state", releaseTransitions[r.GetState()], allEnum[v1.ReleaseState](10))
			return cmd{SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: now, ReleaseId: rel,
				State: to, CurrentPhase: rapid.Int32Range(-1, 3).Draw(t, "current_phase"),
				WatchUntilUnixNano: now + rapid.Int64Range(-1, 1000).Draw(t, "watch_until")}}
		case 9, 10, 11:
			idx := rapid.Int32Range(-1, 3).Draw(t, "index")
			var from v1.PhaseState
			if idx >= 0 && int(idx) < len(r.GetPhases()) {
				from = r.GetPhases()[idx].GetState()
			}
			return cmd{SetPhaseState, &v1.SetPhaseStateCommand{TimeUnixNano: now, ReleaseId: rel, Index: idx,
				State: prefer(t, "state", phaseTransitions[from], allEnum[v1.PhaseState](5)), BakeDeadlineUnixNano: now + 100}}
		case 12:
			return cmd{ApprovePhase, &v1.ApprovePhaseCommand{TimeUnixNano: now, ReleaseId: rel, Index: rapid.Int32Range(0, 3).Draw(t, "index")}}
		case 13, 14:
			c := &v1.CreateAssignmentsCommand{TimeUnixNano: now}
			for i := range rapid.IntRange(1, 3).Draw(t, "n") {
				h := host
				if i > 0 {
					h = prefer(t, "host", hostIDs, poolHosts)
				}
				c.Assignments = append(c.Assignments, &v1.Assignment{Host: h, App: app, ReleaseId: rel, Generation: gen(h, 1),
					Phase: rapid.Int32Range(0, 2).Draw(t, "phase")})
			}
			return cmd{CreateAssignments, c}
		case 15, 16, 17:
			c := &v1.UpdateAssignmentsCommand{TimeUnixNano: now}
			for i := range rapid.IntRange(1, 4).Draw(t, "n") {
				h := host
				if i > 0 {
					h = prefer(t, "host", hostIDs, poolHosts)
				}
				from := s.Assignment(h, app).GetState()
				c.Updates = append(c.Updates, &v1.AssignmentUpdate{Host: h, App: app, Generation: gen(h, 0),
					State: prefer(t, "state", assignmentTransitions[from], allEnum[v1.AssignmentState](11))})
			}
			return cmd{UpdateAssignments, c}
		case 18:
			switch rapid.IntRange(0, 2).Draw(t, "audit_kind") {
			case 0:
				c := &v1.AppendEventsCommand{TimeUnixNano: now}
				for _, k := range rapid.SliceOfN(rapid.SampledFrom([]string{"gate.failed", "host.reverted", ""}), 0, 3).Draw(t, "kinds") {
					c.Events = append(c.Events, &v1.Event{Kind: k, ReleaseId: rel})
				}
				return cmd{AppendEvents, c}
			case 1:
				return cmd{RemoveFreeze, &v1.RemoveFreezeCommand{TimeUnixNano: now, Id: rapid.SampledFrom(poolFreezes).Draw(t, "freeze")}}
			default:
				from := rapid.Int64Range(0, 10).Draw(t, "from")
				return cmd{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: now, Window: &v1.FreezeWindow{
					Id: rapid.SampledFrom(poolFreezes).Draw(t, "freeze"), FromUnixNano: from, ToUnixNano: from + rapid.Int64Range(-1, 5).Draw(t, "len")}}}
			}
		case 22:
			return cmd{AckRelease, &v1.AckReleaseCommand{TimeUnixNano: now, ReleaseId: rel,
				Actor: rapid.SampledFrom([]string{"ops", ""}).Draw(t, "ack_actor")}}
		case 21:
			return cmd{Prune, &v1.PruneCommand{TimeUnixNano: now, Actor: "gc",
				KeepReleasesPerApp:   int32(rapid.IntRange(-1, 2).Draw(t, "keep")),
				EventsBeforeUnixNano: rapid.Int64Range(0, now).Draw(t, "before")}}
		case 20:
			tok := &v1.ACLToken{
				AccessorId: rapid.SampledFrom(poolTokens).Draw(t, "accessor"),
				SecretHash: rapid.SampledFrom(poolHashes).Draw(t, "hash"),
				Name:       rapid.SampledFrom([]string{"n0", "n1", "n2", ""}).Draw(t, "name"),
				Role:       rapid.SampledFrom([]string{RoleRead, RoleDeploy, RoleAdmin, "root"}).Draw(t, "role"),
			}
			switch rapid.IntRange(0, 2).Draw(t, "acl_kind") {
			case 0:
				return cmd{ACLBootstrap, &v1.ACLBootstrapCommand{TimeUnixNano: now, Token: tok}}
			case 1:
				return cmd{UpsertACLToken, &v1.UpsertACLTokenCommand{TimeUnixNano: now, Token: tok, Actor: "ops"}}
			default:
				return cmd{DeleteACLToken, &v1.DeleteACLTokenCommand{TimeUnixNano: now, AccessorId: tok.GetAccessorId(), Actor: "ops"}}
			}
		default:
			return cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{TimeUnixNano: now, On: rapid.Bool().Draw(t, "on"),
				Reason: rapid.SampledFrom([]string{"", "incident"}).Draw(t, "reason")}}
		}
	})
}

// checkStep verifies that one applied command moved every object only along
// its state machine. prev and cur are private copies.
func checkStep(t *rapid.T, prev, cur *plain, c cmd, res interface{}) {
	if err := checkInvariants(cur); err != nil {
		t.Fatalf("after %v: %v", c.t, err)
	}
	if err, ok := res.(error); ok {
		cur.appliedIndex = prev.appliedIndex
		if !plainState(prev).Equal(plainState(cur)) {
			t.Fatalf("rejected %v (%v) changed state", c.t, err)
		}
		return
	}
	if ur, ok := res.(*UpdateResult); ok {
		checkUpdateBatch(t, prev, cur, c.m.(*v1.UpdateAssignmentsCommand), ur)
	}
	if c.t == Prune {
		checkPrune(t, prev, cur, c.m.(*v1.PruneCommand))
		return
	}
	for id, r := range cur.releases {
		p, existed := prev.releases[id]
		if !existed {
			if r.GetState() != rsPending {
				t.Fatalf("new release %q is %v", id, r.GetState())
			}
			continue
		}
		if p.GetState() != r.GetState() && !ReleaseTransitionAllowed(p.GetState(), r.GetState()) {
			t.Fatalf("release %q moved %v -> %v", id, p.GetState(), r.GetState())
		}
		for i, ph := range r.GetPhases() {
			from := p.GetPhases()[i].GetState()
			if from != ph.GetState() && !PhaseTransitionAllowed(from, ph.GetState()) {
				t.Fatalf("release %q phase %d moved %v -> %v", id, i, from, ph.GetState())
			}
		}
	}
	for k, hist := range prev.assignments {
		now := cur.assignments[k]
		if len(now) < len(hist) {
			t.Fatalf("%v: history shrank", k)
		}
		for i, a := range hist {
			b := now[i]
			if b.GetGeneration() != a.GetGeneration() {
				t.Fatalf("%v: history rewritten", k)
			}
			from, to := a.GetState(), b.GetState()
			abandoned := to == asAbandoned && !AssignmentEnded(from) && c.t == SetReleaseState
			// A batch may take one assignment several legal steps; checkUpdateBatch covers it.
			batched := c.t == UpdateAssignments
			if from != to && !AssignmentTransitionAllowed(from, to) && !abandoned && !batched {
				t.Fatalf("%v generation %d moved %v -> %v", k, a.GetGeneration(), from, to)
			}
		}
	}
	if len(cur.events) < len(prev.events) {
		t.Fatal("events lost")
	}
}

// checkPrune: a prune drops only finished releases no host runs, keeps at
// least keep finished ones per app, drops events only when old or of a
// dropped release, and changes no kept object.
func checkPrune(t *rapid.T, prev, cur *plain, c *v1.PruneCommand) {
	finished := map[string]int{}
	for id, r := range prev.releases {
		if _, kept := cur.releases[id]; kept {
			if !proto.Equal(r, cur.releases[id]) {
				t.Fatalf("prune changed kept release %q", id)
			}
			if ReleaseTerminal(r.GetState()) {
				finished[r.GetSpec().GetApp()]++
			}
			continue
		}
		if !ReleaseTerminal(r.GetState()) {
			t.Fatalf("prune dropped live release %q (%v)", id, r.GetState())
		}
		for _, hist := range prev.assignments {
			if hist[len(hist)-1].GetReleaseId() == id {
				t.Fatalf("prune dropped release %q that a host still runs", id)
			}
		}
	}
	for id, r := range prev.releases {
		if _, kept := cur.releases[id]; !kept && finished[r.GetSpec().GetApp()] < int(c.GetKeepReleasesPerApp()) {
			t.Fatalf("app %q keeps %d finished release(s), fewer than %d, yet %q was dropped", r.GetSpec().GetApp(), finished[r.GetSpec().GetApp()], c.GetKeepReleasesPerApp(), id)
		}
	}
	kept := map[uint64]bool{}
	for _, e := range cur.events {
		kept[e.GetSeq()] = true
	}
	for _, e := range prev.events {
		_, relKept := cur.releases[e.GetReleaseId()]
		if !kept[e.GetSeq()] && e.GetTimeUnixNano() >= c.GetEventsBeforeUnixNano() && (e.GetReleaseId() == "" || relKept) {
			t.Fatalf("prune dropped event %d (%s) that is neither old nor of a dropped release", e.GetSeq(), e.GetKind())
		}
	}
	if last := cur.events[len(cur.events)-1]; last.GetKind() != "state.pruned" || (len(prev.events) > 0 && last.GetSeq() <= prev.events[len(prev.events)-1].GetSeq()) {
		t.Fatalf("last event after prune = %v", last)
	}
	for k, hist := range cur.assignments {
		p := prev.assignments[k]
		if !proto.Equal(hist[len(hist)-1], p[len(p)-1]) {
			t.Fatalf("%v: prune changed the current assignment", k)
		}
	}
}

// checkUpdateBatch replays a batch against a model of the current
// assignments: updates apply in order, each only if its generation is
// current and its transition legal. The FSM must agree on every final state
// and on the counts.
func checkUpdateBatch(t *rapid.T, prev, cur *plain, c *v1.UpdateAssignmentsCommand, ur *UpdateResult) {
	type genState struct {
		gen uint64
		st  v1.AssignmentState
	}
	model := map[hostApp]genState{}
	for k, hist := range prev.assignments {
		a := hist[len(hist)-1]
		model[k] = genState{a.GetGeneration(), a.GetState()}
	}
	var want UpdateResult
	for _, u := range c.GetUpdates() {
		k := hostApp{u.GetHost(), u.GetApp()}
		m, ok := model[k]
		if !ok || m.gen != u.GetGeneration() || !AssignmentTransitionAllowed(m.st, u.GetState()) {
			want.Skipped++
			continue
		}
		model[k] = genState{m.gen, u.GetState()}
		want.Applied++
	}
	if *ur != want {
		t.Fatalf("update result %+v, model says %+v", *ur, want)
	}
	for k, m := range model {
		hist := cur.assignments[k]
		if a := hist[len(hist)-1]; a.GetGeneration() != m.gen || a.GetState() != m.st {
			t.Fatalf("%v: FSM has generation %d %v, model %d %v", k, a.GetGeneration(), a.GetState(), m.gen, m.st)
		}
	}
}

func TestPropertyRandomCommands(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := New(nil)
		var log [][]byte
		accepted := 0
		steps := rapid.IntRange(1, 150).Draw(t, "steps")
		for i := range steps {
			now := t0 + int64(i)*1000
			c := genCmd(f.State(), now).Draw(t, fmt.Sprintf("cmd%d", i))
			data, err := Encode(c.t, c.m)
			if err != nil {
				t.Fatal(err)
			}
			log = append(log, data)
			prev := plainOf(f.State())
			res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
			if res == nil {
				accepted++
			}
			checkStep(t, prev, plainOf(f.State()), c, res)
		}

		// Snapshot -> Persist -> Restore into a fresh FSM gives the same state.
		snap, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			t.Fatal(err)
		}
		g := New(nil)
		if err := g.Restore(nopCloser(sink.Bytes())); err != nil {
			t.Fatal(err)
		}
		if !f.State().Equal(g.State()) || f.State().Dump() != g.State().Dump() {
			t.Fatalf("restore differs:\n%s\nvs\n%s", f.State().Dump(), g.State().Dump())
		}
		// Replaying the same log elsewhere reaches the same state: Apply is deterministic.
		h := New(nil)
		for i, data := range log {
			h.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		}
		if !f.State().Equal(h.State()) {
			t.Fatal("replay diverged")
		}
		checkLiveAssignments(t, f.State())
		t.Logf("%d of %d commands accepted", accepted, steps)
	})
}

// checkLiveAssignments: the batch reads (Assignments, HasHost,
// LiveAssignments) give what the orchestrator used to compose from
// Host, Assignment and ReleaseAssignments.
func checkLiveAssignments(t *rapid.T, s *State) {
	// Assignments and HasHost: the per-host reads, from one view.
	for _, app := range poolApps {
		for i, a := range s.Assignments(app, poolHosts) {
			if want := s.Assignment(poolHosts[i], app); !proto.Equal(a, want) {
				t.Fatalf("Assignments(%s)[%s] = %v, want %v", app, poolHosts[i], a, want)
			}
		}
	}
	for _, h := range poolHosts {
		if s.HasHost(h) != (s.Host(h) != nil) {
			t.Fatalf("HasHost(%q) = %v", h, s.HasHost(h))
		}
	}
	for _, r := range s.Releases("") {
		var want []*v1.Assignment
		seen := map[string]bool{}
		for _, a := range s.ReleaseAssignments(r.GetId()) {
			if seen[a.GetHost()] {
				continue
			}
			if cur := s.Assignment(a.GetHost(), a.GetApp()); cur != nil && cur.GetReleaseId() == r.GetId() {
				seen[a.GetHost()] = true
				want = append(want, cur)
			}
		}
		got := s.LiveAssignments(r.GetId())
		if len(got) != len(want) {
			t.Fatalf("release %s: LiveAssignments has %d, want %d: %v vs %v", r.GetId(), len(got), len(want), got, want)
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("release %s: LiveAssignments[%d] = %v, want %v", r.GetId(), i, got[i], want[i])
			}
		}
	}
}
