package raftfsm

import (
	"errors"
	"fmt"
)

// CheckInvariants verifies the rules that must hold between any two
// commands, returning every violation found (joined), or nil:
//   - per (host, app), generations strictly increase and only the current
//     (newest) assignment may still be active;
//   - every assignment's release exists;
//   - an app's active_release_id names an existing, non-terminal release of
//     that app, and every non-terminal release is its app's active release;
//   - audit event seqs strictly increase;
//   - ACL tokens exist only after bootstrap, each valid, keyed by its
//     accessor, with unique names and secret hashes, and at least one admin.
func CheckInvariants(s *State) error {
	v, idx := s.pointInTime()
	return checkInvariants(v.toPlain(idx))
}

func checkInvariants(s *plain) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for k, hist := range s.assignments {
		if len(hist) == 0 {
			bad("host %q app %q: empty assignment history", k.host, k.app)
		}
		for i, a := range hist {
			if a.GetHost() != k.host || a.GetApp() != k.app {
				bad("host %q app %q: history holds assignment for host %q app %q", k.host, k.app, a.GetHost(), a.GetApp())
			}
			if i > 0 && a.GetGeneration() <= hist[i-1].GetGeneration() {
				bad("host %q app %q: generation %d follows %d", k.host, k.app, a.GetGeneration(), hist[i-1].GetGeneration())
			}
			if i < len(hist)-1 && !AssignmentEnded(a.GetState()) {
				bad("host %q app %q: generation %d is %s but is not the newest (%d): two active assignments",
					k.host, k.app, a.GetGeneration(), stateName(a.GetState()), hist[len(hist)-1].GetGeneration())
			}
			if _, ok := s.releases[a.GetReleaseId()]; !ok {
				bad("host %q app %q generation %d: release %q does not exist", k.host, k.app, a.GetGeneration(), a.GetReleaseId())
			}
		}
	}
	for name, app := range s.apps {
		id := app.GetActiveReleaseId()
		if id == "" {
			continue
		}
		r, ok := s.releases[id]
		switch {
		case !ok:
			bad("app %q: active release %q does not exist", name, id)
		case ReleaseTerminal(r.GetState()):
			bad("app %q: active release %q is %s", name, id, stateName(r.GetState()))
		case r.GetSpec().GetApp() != name:
			bad("app %q: active release %q belongs to app %q", name, id, r.GetSpec().GetApp())
		}
	}
	for id, r := range s.releases {
		if ReleaseTerminal(r.GetState()) {
			continue
		}
		if app := s.apps[r.GetSpec().GetApp()]; app.GetActiveReleaseId() != id {
			bad("release %q is %s but app %q's active release is %q", id, stateName(r.GetState()), r.GetSpec().GetApp(), app.GetActiveReleaseId())
		}
	}
	for i := 1; i < len(s.events); i++ {
		if s.events[i].GetSeq() <= s.events[i-1].GetSeq() {
			bad("event seq %d follows %d", s.events[i].GetSeq(), s.events[i-1].GetSeq())
		}
	}
	checkACLInvariants(s, bad)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftfsm: invariants violated: %w", err)
	}
	return nil
}

func checkACLInvariants(s *plain, bad func(string, ...any)) {
	if len(s.aclTokens) == 0 {
		if s.aclBootstrapUnixNano != 0 {
			bad("ACLs are bootstrapped but no token exists")
		}
		return
	}
	if s.aclBootstrapUnixNano == 0 {
		bad("%d ACL token(s) exist but ACLs are not bootstrapped", len(s.aclTokens))
	}
	names, hashes, admins := map[string]bool{}, map[string]bool{}, 0
	for k, t := range s.aclTokens {
		if k != t.GetAccessorId() {
			bad("ACL token keyed %q has accessor %q", k, t.GetAccessorId())
		}
		if err := checkACLToken(t); err != nil {
			bad("ACL token %q: %v", k, err)
		}
		if names[t.GetName()] {
			bad("ACL token name %q is used twice", t.GetName())
		}
		if hashes[t.GetSecretHash()] {
			bad("ACL token %q: secret hash used twice", k)
		}
		names[t.GetName()], hashes[t.GetSecretHash()] = true, true
		if t.GetRole() == RoleAdmin {
			admins++
		}
	}
	if admins == 0 {
		bad("no admin ACL token is left")
	}
}
