package cli

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// heldEventKind is the audit event a coordinator records when an agent
// reports that it kept its new version through a control-plane outage
// (rollback.on_control_plane_loss = "hold").
const heldEventKind = "host.held_control_plane_down"

// contactNote is what a host did about its current assignment of an app
// while it had no leader: it reverted alone (reverted_isolated, from the
// assignment's state) or held the new version through a control-plane
// outage (from the latest host.held_control_plane_down event of that
// generation).
type contactNote struct {
	host, app string
	gen       uint64
	// kind is "reverted_isolated" or "held_control_plane_down".
	kind string
	// heldFor is how long the host held (0: not known).
	heldFor time.Duration
	// reason is the agent's own account.
	reason string
}

// short renders the note for a table cell:
// "api gen 7: held_control_plane_down 35s".
func (n contactNote) short() string {
	s := fmt.Sprintf("%s gen %d: %s", n.app, n.gen, n.kind)
	if n.heldFor > 0 {
		s += " " + shortDuration(n.heldFor)
	}
	return s
}

// contactNotes derives the notes of the given current assignments from
// their states and the events of their releases, sorted by host and app.
func contactNotes(assignments []*rollwavev1.Assignment, events []*rollwavev1.Event) []contactNote {
	type key struct {
		host, app string
		gen       uint64
	}
	held := map[key]*rollwavev1.Event{}
	for _, e := range events {
		if e.GetKind() != heldEventKind {
			continue
		}
		gen, err := strconv.ParseUint(e.GetEvidence()["generation"], 10, 64)
		if err != nil {
			continue
		}
		held[key{e.GetHost(), e.GetEvidence()["app"], gen}] = e // events come in seq order: the latest wins
	}
	var out []contactNote
	for _, a := range assignments {
		k := key{a.GetHost(), a.GetApp(), a.GetGeneration()}
		if a.GetState() == rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
			out = append(out, contactNote{host: k.host, app: k.app, gen: k.gen, kind: "reverted_isolated", reason: a.GetReason()})
			continue
		}
		if e := held[k]; e != nil {
			n := contactNote{host: k.host, app: k.app, gen: k.gen, kind: "held_control_plane_down", reason: e.GetEvidence()["report"]}
			if d, err := time.ParseDuration(e.GetEvidence()["held_for"]); err == nil {
				n.heldFor = d
			}
			if n.reason == "" {
				n.reason = e.GetMessage()
			}
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].host != out[j].host {
			return out[i].host < out[j].host
		}
		return out[i].app < out[j].app
	})
	return out
}
