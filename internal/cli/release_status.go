package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// watchRecentEvents is how many of the latest events the redrawn -watch
// screen shows under the phases.
const watchRecentEvents = 8

func newReleaseStatusCommand(a *app) *cobra.Command {
	var asJSON, watch bool
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "status ID [-watch | -wait [-timeout 30m]]",
		Short: "Show a release's progress phase by phase",
		Long: `Show a release's progress: per phase its state, hosts done out of total,
the bake countdown and the latest gate readings.

With -watch, follow the release until it ends: on a terminal the view is
redrawn on every change, otherwise each event is appended as a line. The
exit code then tells how it ended: 0 if it succeeded, 1 if it was rolled
back, aborted or failed. -watch has no -timeout; interrupt to stop watching
(the release carries on).

With -wait (for CI pipelines), print one line per change of state, phase or
hosts done (-json: one JSON object per line, the last with "outcome" and
"exit_code") until the release ends or -timeout (default 30m, for the whole
wait) passes; the stream is reopened if the coordinator ends it. Exit codes:
0 succeeded; 1 rolled back, failed or aborted; 3 timed out (still running,
paused or waiting for approval — nothing is stopped); 2 usage; 4–9 the
coordinator refused the request (see docs/operations.md).`,
		Example: `  rollwave release status api-2.4.0
  rollwave release status api-2.4.0 -watch
  rollwave release status api-2.4.0 -wait -timeout 45m -json`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			if watch && wf.wait {
				return usageErrorf("-watch and -wait are exclusive: -watch is for people (redraws a terminal), -wait for pipelines")
			}
			if wf.wait {
				return a.waitRelease(cmd, client, args[0], a.waitTimeout(cmd), asJSON)
			}
			if watch {
				return a.watchRelease(cmd, client, args[0], asJSON)
			}
			ctx, cancel := a.unary(cmd)
			defer cancel()
			resp, err := client.GetRelease(ctx, &rollwavev1.GetReleaseRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), resp)
			}
			events, err := listAllEvents(ctx, client, args[0])
			if err != nil {
				return err
			}
			if err := renderStatus(cmd.OutOrStdout(), a.now(), resp.GetRelease(), resp.GetAssignments(), events, resp.GetTraffic()); err != nil {
				return err
			}
			return renderDrifted(cmd.OutOrStdout(), resp.GetRelease(), resp.GetDrifted())
		},
	}
	addJSONFlag(cmd, &asJSON)
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the release until it ends; exit 1 unless it succeeds")
	addWaitFlag(cmd, &wf)
	return cmd
}

// watchRelease streams WatchRelease until the release reaches a final state
// and returns nil only if it succeeded.
func (a *app) watchRelease(cmd *cobra.Command, client rollwavev1.OperatorServiceClient, id string, asJSON bool) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	out := cmd.OutOrStdout()
	// With -json, stdout holds only JSON (one object per update and line);
	// the closing "Release … succeeded" line goes to stderr.
	outcome := out
	if asJSON {
		outcome = cmd.ErrOrStderr()
	}
	redraw := !asJSON && isTerminal(out)

	// Events from before the watch started, so the first view already
	// shows the gate readings; the stream's events are deduplicated by seq.
	var events []*rollwavev1.Event
	if redraw {
		uctx, cancel := context.WithTimeout(ctx, a.timeout)
		var err error
		events, err = listAllEvents(uctx, client, id)
		cancel()
		if err != nil {
			return err
		}
	}
	var lastSeq uint64
	if n := len(events); n > 0 {
		lastSeq = events[n-1].GetSeq()
	}

	stream, err := client.WatchRelease(ctx, &rollwavev1.WatchReleaseRequest{Id: id})
	if err != nil {
		return err
	}
	var (
		last      *rollwavev1.Release
		lastState = rollwavev1.ReleaseState_RELEASE_STATE_UNSPECIFIED
		lastPhase = int32(-1)
	)
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if last != nil && releaseEnded(last.GetState()) {
				return releaseOutcome(outcome, last)
			}
			state := "unknown"
			if last != nil {
				state = releaseStateName(last.GetState())
			}
			return fmt.Errorf("the coordinator ended the watch before release %s finished (last state %s); run the command again to keep watching", id, state)
		}
		if err != nil {
			return err
		}
		last = msg.GetRelease()

		var fresh []*rollwavev1.Event
		for _, e := range msg.GetEvents() {
			if len(events) > 0 && e.GetSeq() <= lastSeq {
				continue
			}
			events = append(events, e)
			fresh = append(fresh, e)
			lastSeq = e.GetSeq()
		}

		switch {
		case asJSON:
			if err := writeJSONLine(out, msg); err != nil {
				return err
			}
		case redraw:
			fmt.Fprint(out, "\x1b[H\x1b[2J") // cursor home, clear screen
			if err := renderStatus(out, a.now(), last, msg.GetAssignments(), events, msg.GetTraffic()); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nRecent events:")
			from := max(0, len(events)-watchRecentEvents)
			for _, e := range events[from:] {
				eventLine(out, e)
			}
		default:
			if last.GetState() != lastState || last.GetCurrentPhase() != lastPhase {
				fmt.Fprintf(out, "%s  release %s: %s, phase %s\n", a.now().UTC().Format(time.RFC3339),
					last.GetId(), releaseStateName(last.GetState()), phaseProgress(last))
			}
			for _, e := range fresh {
				eventLine(out, e)
			}
		}
		lastState, lastPhase = last.GetState(), last.GetCurrentPhase()

		if releaseEnded(last.GetState()) {
			return releaseOutcome(outcome, last)
		}
	}
}

// watchNote is " until T (D left)" for a release in its post_rollout
// watch, empty otherwise.
func watchNote(r *rollwavev1.Release, now time.Time) string {
	if r.GetState() != rollwavev1.ReleaseState_RELEASE_STATE_WATCHING || r.GetWatchUntilUnixNano() == 0 {
		return ""
	}
	until := time.Unix(0, r.GetWatchUntilUnixNano())
	left := max(until.Sub(now), 0).Round(time.Second)
	return fmt.Sprintf(" until %s (%s left)", until.UTC().Format(time.RFC3339), left)
}

func releaseEnded(s rollwavev1.ReleaseState) bool {
	switch s {
	case rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED,
		rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
		rollwavev1.ReleaseState_RELEASE_STATE_ABORTED,
		rollwavev1.ReleaseState_RELEASE_STATE_FAILED,
		rollwavev1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED:
		return true
	}
	return false
}

// releaseOutcome reports a release that ended: nil if it succeeded, an error
// (exit 1) naming the state and reason otherwise.
func releaseOutcome(out io.Writer, r *rollwavev1.Release) error {
	if r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED {
		_, err := fmt.Fprintf(out, "Release %s succeeded\n", r.GetId())
		return err
	}
	msg := fmt.Sprintf("release %s ended %s", r.GetId(), releaseStateName(r.GetState()))
	if r.GetReason() != "" {
		msg += ": " + r.GetReason()
	}
	return errors.New(msg)
}

// isTerminal reports whether w is a character device, where redrawing the
// screen makes sense; pipes and files get appended lines instead.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// releaseHeader prints the release's identity and state as key/value lines.
func releaseHeader(w io.Writer, now time.Time, r *rollwavev1.Release) error {
	spec := r.GetSpec()
	created := timestamp(r.GetCreatedUnixNano())
	if r.GetCreatedBy() != "" {
		created += " by " + r.GetCreatedBy()
	}
	phase := ""
	if n := len(r.GetPhases()); n > 0 {
		phase = fmt.Sprintf("%d of %d (counting from 0)", r.GetCurrentPhase(), n)
	}
	pairs := []string{
		"ID", r.GetId(),
		"App", strings.TrimSpace(spec.GetApp() + " " + spec.GetVersion()),
		"State", releaseStateName(r.GetState()) + watchNote(r, now),
		"Phase", phase,
		"Reason", r.GetReason(),
		"Created", created,
	}
	if c := r.GetChain(); c != "" {
		what := fmt.Sprintf("%s, release %d (rollwave chain status %s)", c, r.GetChainStep()+1, c)
		if r.GetChainRevert() {
			what = fmt.Sprintf("%s, revert of release %d (rollwave chain status %s)", c, r.GetChainStep()+1, c)
		}
		pairs = append(pairs, "Chain", what)
	}
	if reqs := r.GetSpec().GetRequires(); len(reqs) > 0 {
		var parts []string
		for _, q := range reqs {
			parts = append(parts, q.GetApp()+" "+q.GetVersion())
		}
		pairs = append(pairs, "Requires", strings.Join(parts, "; "))
	}
	if ov := r.GetFreezeOverride(); ov != nil {
		pairs = append(pairs, "Freeze override", fmt.Sprintf("by %s at %s: %s", ov.GetActor(), timestamp(ov.GetTimeUnixNano()), ov.GetReason()))
	}
	return keyValues(w, pairs...)
}

// heldReason is why the current phase waits to start (a freeze), from
// its latest phase.held event with no phase.started after it; "" when it
// is not held.
func heldReason(r *rollwavev1.Release, events []*rollwavev1.Event) string {
	cur := r.GetCurrentPhase()
	if int(cur) >= len(r.GetPhases()) || r.GetPhases()[cur].GetState() != rollwavev1.PhaseState_PHASE_STATE_PENDING {
		return ""
	}
	why := ""
	for _, e := range events {
		if e.GetPhase() != cur {
			continue
		}
		switch e.GetKind() {
		case "phase.held":
			why = e.GetEvidence()["reason"]
			if why == "" {
				why = e.GetMessage()
			}
		case "phase.started":
			why = ""
		}
	}
	return why
}

// renderStatus prints the release header, one row per phase (with the
// traffic its hosts give the new version) and the hosts whose traffic is
// not all on the new version yet (dark phase, weighted steps).
func renderStatus(w io.Writer, now time.Time, r *rollwavev1.Release, assignments []*rollwavev1.Assignment, events []*rollwavev1.Event, traffic []*rollwavev1.HostTraffic) error {
	if err := releaseHeader(w, now, r); err != nil {
		return err
	}
	fmt.Fprintln(w)

	// The latest gate readings per phase come from the evidence of the
	// phase's most recent "gate.*" event.
	gates := map[int32]*rollwavev1.Event{}
	for _, e := range events {
		if strings.HasPrefix(e.GetKind(), "gate.") {
			gates[e.GetPhase()] = e
		}
	}
	// The TRAFFIC column appears once some host has switched (a
	// coordinator from before the column reports none).
	cols := []string{"PHASE", "STATE", "HOSTS", "BAKE", "CELLS", "TRAFFIC", "GATES"}
	if len(traffic) == 0 {
		cols = slices.Delete(cols, 5, 6)
	}
	t := newTable(w, cols...)
	for _, p := range r.GetPhases() {
		gate := ""
		if e := gates[p.GetIndex()]; e != nil {
			gate = strings.TrimSpace(e.GetKind() + " " + evidenceString(e.GetEvidence()))
		}
		name := strconv.Itoa(int(p.GetIndex()))
		if p.GetRegion() != "" {
			name += " (" + p.GetRegion() + ")"
		}
		row := []string{name, phaseStateName(p.GetState()), hostsDone(p, assignments),
			bakeCell(now, p), strings.Join(p.GetCells(), ","), phaseTraffic(p.GetIndex(), traffic), gate}
		if len(traffic) == 0 {
			row = slices.Delete(row, 5, 6)
		}
		t.row(row...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if err := renderRegions(w, r); err != nil {
		return err
	}
	if err := renderTraffic(w, traffic); err != nil {
		return err
	}
	if why := heldReason(r, events); why != "" {
		fmt.Fprintf(w, "\nPhase %d held: %s\n", r.GetCurrentPhase(), why)
	}
	return renderContactNotes(w, contactNotes(assignments, events))
}

// renderDrifted lists the hosts of the release's target not on its
// version, when the release is its app's desired (last succeeded) one.
func renderDrifted(w io.Writer, r *rollwavev1.Release, ds []*rollwavev1.DriftedHost) error {
	if len(ds) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nDrifted (%d host(s) of the target not on %s; rollwave release converge %s):\n", len(ds), r.GetSpec().GetVersion(), r.GetSpec().GetApp())
	t := newTable(w, "HOST", "HAS", "WANTS", "WHY")
	for _, d := range ds {
		t.row(d.GetHost(), versionOrNone(d.GetHasVersion()), d.GetWantsVersion(), d.GetReason())
	}
	return t.flush()
}

func versionOrNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// renderContactNotes lists the hosts that reverted alone or held through
// a control-plane outage, with the agent's reason; nothing when none did.
func renderContactNotes(w io.Writer, notes []contactNote) error {
	if len(notes) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nWithout a leader:")
	t := newTable(w, "HOST", "APP", "GEN", "WHAT", "FOR", "REASON")
	for _, n := range notes {
		held := ""
		if n.heldFor > 0 {
			held = shortDuration(n.heldFor)
		}
		t.row(n.host, n.app, strconv.FormatUint(n.gen, 10), n.kind, held, n.reason)
	}
	return t.flush()
}

// hostsDone reads "done/total", where done hosts are those past the switch
// and checks (baking, healthy or finalized), plus how many failed.
func hostsDone(p *rollwavev1.Phase, assignments []*rollwavev1.Assignment) string {
	var done, failed int
	for _, as := range assignments {
		if as.GetPhase() != p.GetIndex() {
			continue
		}
		switch as.GetState() {
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED:
			done++
		case rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED,
			rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED:
			failed++
		}
	}
	s := fmt.Sprintf("%d/%d", done, len(p.GetHosts()))
	if failed > 0 {
		s += fmt.Sprintf(" (%d failed/reverted)", failed)
	}
	return s
}

// bakeCell describes a phase's bake: its length before it starts, the time
// left while it runs, and how it ended.
func bakeCell(now time.Time, p *rollwavev1.Phase) string {
	switch p.GetState() {
	case rollwavev1.PhaseState_PHASE_STATE_BAKING:
		if p.GetBakeDeadlineUnixNano() == 0 {
			return msDuration(p.GetBakeMs())
		}
		left := time.Unix(0, p.GetBakeDeadlineUnixNano()).Sub(now)
		if left <= 0 {
			return "ending"
		}
		return shortDuration(left) + " left"
	case rollwavev1.PhaseState_PHASE_STATE_VERIFIED:
		if p.GetBakeSkipped() {
			return "skipped"
		}
		return "done"
	case rollwavev1.PhaseState_PHASE_STATE_FAILED:
		return ""
	}
	return msDuration(p.GetBakeMs())
}

// renderRegions prints one line per region of a release whose phases split
// per region (phases.parallel_regions_after): its state, its phase now out
// of its own, and why.
func renderRegions(w io.Writer, r *rollwavev1.Release) error {
	if len(r.GetRegions()) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := newTable(w, "REGION", "STATE", "PHASE", "REASON")
	for _, g := range r.GetRegions() {
		first, n := g.GetFirstPhase(), g.GetPhaseCount()
		t.row(g.GetRegion(), releaseStateName(g.GetState()),
			fmt.Sprintf("%d (%d of %d: phases %d-%d)", g.GetCurrentPhase(), g.GetCurrentPhase()-first+1, n, first, first+n-1), g.GetReason())
	}
	return t.flush()
}

// weightText is a host's traffic for the new version: "0% (dark)",
// "0% (dark, shadow)", "10%" or "100%".
func weightText(t *rollwavev1.HostTraffic) string {
	s := fmt.Sprintf("%d%%", t.GetNewWeight())
	switch {
	case t.GetDark() && t.GetShadow():
		s += " (dark, shadow)"
	case t.GetDark():
		s += " (dark)"
	}
	return s
}

// phaseTraffic sums up a phase's hosts by the new version's share of
// their traffic, as "2×100% 1×0% (dark)"; "" when none is switched yet.
func phaseTraffic(phase int32, traffic []*rollwavev1.HostTraffic) string {
	var order []string
	n := map[string]int{}
	for _, t := range traffic {
		if t.GetPhase() != phase {
			continue
		}
		k := weightText(t)
		if n[k] == 0 {
			order = append(order, k)
		}
		n[k]++
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d×%s", n[k], k))
	}
	return strings.Join(parts, " ")
}

// renderTraffic lists the hosts whose traffic is not all on the new
// version yet; nothing when there are none.
func renderTraffic(w io.Writer, traffic []*rollwavev1.HostTraffic) error {
	var moving []*rollwavev1.HostTraffic
	for _, t := range traffic {
		if t.GetNewWeight() < 100 {
			moving = append(moving, t)
		}
	}
	if len(moving) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nTraffic not yet all on the new version:")
	t := newTable(w, "HOST", "PHASE", "NEW VERSION GETS")
	for _, m := range moving {
		t.row(m.GetHost(), strconv.Itoa(int(m.GetPhase())), weightText(m))
	}
	return t.flush()
}
