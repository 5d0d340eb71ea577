package raftfsm

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// prunePlan is what a PruneCommand drops from a state.
type prunePlan struct {
	releases []*v1.Release
	// events older than the cutoff (those of dropped releases are dropped
	// with them and not counted here).
	oldEvents []*v1.Event
}

func (p prunePlan) empty() bool { return len(p.releases) == 0 && len(p.oldEvents) == 0 }

// planPrune decides, from the view and the command's values only, what a
// prune drops: per app, the finished releases beyond the newest keep (by
// creation time, then id) that no host still runs (a host's current
// assignment keeps its release, so every assignment's release exists), and
// the events older than before. keep 0 or before 0 turns that part off.
func (v *view) planPrune(keep int32, before int64) prunePlan {
	var p prunePlan
	if keep > 0 {
		byApp := map[string][]*v1.Release{}
		each(v, tRelease, "app", nil, func(r *v1.Release) bool {
			if ReleaseTerminal(r.GetState()) {
				byApp[r.GetSpec().GetApp()] = append(byApp[r.GetSpec().GetApp()], r)
			}
			return true
		})
		for _, app := range slicesSortedKeys(byApp) {
			rs := byApp[app]
			if len(rs) <= int(keep) {
				continue
			}
			slices.SortFunc(rs, compareReleases)
			for _, r := range rs[:len(rs)-int(keep)] {
				if !v.releaseRunning(r.GetId()) {
					p.releases = append(p.releases, r)
				}
			}
		}
	}
	if before > 0 {
		dropped := map[string]bool{}
		for _, r := range p.releases {
			dropped[r.GetId()] = true
		}
		each(v, tEvent, "id", nil, func(e *v1.Event) bool {
			if e.GetTimeUnixNano() < before && !dropped[e.GetReleaseId()] {
				p.oldEvents = append(p.oldEvents, e)
			}
			return true
		})
	}
	return p
}

func slicesSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// releaseRunning reports whether some host's current assignment is of the
// release.
func (v *view) releaseRunning(id string) bool {
	running := false
	each(v, tHist, "release", strKey(id), func(a *v1.Assignment) bool {
		running = v.current(a.GetHost(), a.GetApp()) == a
		return !running
	})
	return running
}

// applyPrune drops what the retention policy no longer keeps (type 21):
// finished releases beyond the newest N per app with their events and
// assignment history, and events older than the cutoff. It records one
// event saying what went, with the seq the next event would have had: it
// is the newest event and is never older than the cutoff, so seqs never go
// back.
func applyPrune(s *view, _ uint64, cmd *v1.PruneCommand) error {
	switch {
	case cmd.GetTimeUnixNano() <= 0:
		return reject(ErrInvalid, "prune: time is required")
	case cmd.GetKeepReleasesPerApp() < 0:
		return reject(ErrInvalid, "prune: keep_releases_per_app %d must be >= 0", cmd.GetKeepReleasesPerApp())
	case cmd.GetEventsBeforeUnixNano() < 0:
		return reject(ErrInvalid, "prune: events_before_unix_nano %d must be >= 0", cmd.GetEventsBeforeUnixNano())
	case cmd.GetEventsBeforeUnixNano() > cmd.GetTimeUnixNano():
		return reject(ErrInvalid, "prune: events_before_unix_nano %d is after the command's time %d", cmd.GetEventsBeforeUnixNano(), cmd.GetTimeUnixNano())
	}
	p := s.planPrune(cmd.GetKeepReleasesPerApp(), cmd.GetEventsBeforeUnixNano())
	// Taken before anything goes: if every event is dropped, seqs still
	// carry on from the last one.
	seq := s.nextSeq()
	events, assignments := len(p.oldEvents), 0
	for _, r := range p.releases {
		for _, a := range all[*v1.Assignment](s, tHist, "release", strKey(r.GetId())) {
			s.del(tHist, a)
			assignments++
		}
		var evs []*v1.Event
		s.eventsFrom(r.GetId(), 0, func(e *v1.Event) bool { evs = append(evs, e); return true })
		for _, e := range evs {
			s.del(tEvent, e)
		}
		events += len(evs)
		s.del(tRelease, r)
	}
	for _, e := range p.oldEvents {
		s.del(tEvent, e)
	}
	ids := make([]string, 0, len(p.releases))
	for _, r := range p.releases {
		ids = append(ids, r.GetId())
	}
	s.put(tEvent, &v1.Event{
		Seq: seq, TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "state.pruned", Actor: cmd.GetActor(),
		Message: fmt.Sprintf("retention: dropped %d finished release(s), %d assignment(s), %d event(s)", len(p.releases), assignments, events),
		Evidence: map[string]string{
			"releases": fmt.Sprint(len(p.releases)), "assignments": fmt.Sprint(assignments), "events": fmt.Sprint(events),
			"keep_releases_per_app":   fmt.Sprint(cmd.GetKeepReleasesPerApp()),
			"events_before_unix_nano": fmt.Sprint(cmd.GetEventsBeforeUnixNano()),
			"release_ids":             joinCapped(ids, 20),
		},
	})
	return nil
}

// joinCapped joins up to n ids, then says how many more there were, so one
// event stays small however much a prune drops.
func joinCapped(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:n], ","), len(ids)-n)
}

// PruneNeeded reports whether a PruneCommand with these values would drop
// anything; the leader's GC asks before writing one, so an idle cluster's
// log gets no entries.
func (s *State) PruneNeeded(keepReleasesPerApp int32, eventsBeforeUnixNano int64) bool {
	return !s.read().planPrune(keepReleasesPerApp, eventsBeforeUnixNano).empty()
}
