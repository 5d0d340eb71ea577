package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newHostsCommand(a *app) *cobra.Command {
	var (
		asJSON bool
		cell   string
		drift  bool
	)
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List hosts with their liveness and app slots",
		Long: `List the hosts the cluster knows, optionally only those of one cell.

Apps read "app:active-slot@version(other-slot version)": api:blue@2.4.0(green 2.3.0)
means blue serves 2.4.0 and green still holds 2.3.0.

NOTE tells what a host did about its current assignment while it had no
leader: "api gen 7: reverted_isolated" (it was cut off and reverted alone)
or "api gen 7: held_control_plane_down 35s" (every coordinator was down and,
with rollback.on_control_plane_loss = "hold", it kept the new version for
35s). -json lists the hosts as the server returns them, without notes.

-drift lists only drifted hosts: hosts in the target of an app's last
succeeded release that do not run its version (they joined later, were down
when it was planned, failed within its budget, or reverted on their own when
cut off), with a DRIFT column "api: has 2.3.0, wants 2.4.0 (api-2.4.0): why".
"rollwave release converge APP" rolls them to the release.`,
		Example: `  rollwave hosts
  rollwave hosts -cell eu-1a
  rollwave hosts -drift
  rollwave hosts -json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := a.unary(cmd)
			defer cancel()
			resp, err := client.ListHosts(ctx, &rollwavev1.ListHostsRequest{Cell: cell, DriftOnly: drift})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "hosts", resp.GetHosts())
			}
			// The notes come from the hosts' current assignments and the
			// events of their releases (one ListEvents per release).
			var current []*rollwavev1.Assignment
			var events []*rollwavev1.Event
			seen := map[string]bool{}
			for _, hv := range resp.GetHosts() {
				for _, as := range hv.GetAssignments() {
					current = append(current, as)
					if id := as.GetReleaseId(); id != "" && !seen[id] {
						seen[id] = true
						evs, err := listAllEvents(ctx, client, id)
						if err != nil {
							return fmt.Errorf("events of release %s (for the NOTE column): %w", id, err)
						}
						events = append(events, evs...)
					}
				}
			}
			notes := map[string][]string{}
			for _, n := range contactNotes(current, events) {
				notes[n.host] = append(notes[n.host], n.short())
			}
			now := a.now()
			cols := []string{"HOST", "CELL", "REGION", "LIVENESS", "CONNECTED", "LAST CONTACT", "APPS", "NOTE"}
			if drift {
				cols = append(cols, "DRIFT")
			}
			t := newTable(cmd.OutOrStdout(), cols...)
			for _, hv := range resp.GetHosts() {
				h := hv.GetHost()
				row := []string{h.GetId(), h.GetCell(), h.GetRegion(), hv.GetLiveness(), yesNo(hv.GetConnected()),
					ago(now, h.GetLastContactUnixNano()), appsString(h.GetApps()), strings.Join(notes[h.GetId()], "; ")}
				if drift {
					row = append(row, driftString(hv.GetDrift()))
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	cmd.Flags().StringVar(&cell, "cell", "", "only hosts in this cell")
	cmd.Flags().BoolVar(&drift, "drift", false, "only hosts not on their app's last succeeded release, with a DRIFT column")
	return cmd
}

// driftString renders "api: has 2.3.0, wants 2.4.0 (api-2.4.0): why",
// one per app, joined by "; ".
func driftString(ds []*rollwavev1.DriftedHost) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s: has %s, wants %s (%s): %s", d.GetApp(), versionOrNone(d.GetHasVersion()),
			d.GetWantsVersion(), d.GetReleaseId(), d.GetReason()))
	}
	return strings.Join(parts, "; ")
}

// appsString renders slot facts as "api:blue@2.4.0(green 2.3.0)", joined by
// spaces; the parenthesis is left out when the idle slot holds nothing.
func appsString(apps []*rollwavev1.SlotFacts) string {
	parts := make([]string, 0, len(apps))
	for _, f := range apps {
		active, activeVersion, idle, idleVersion := "blue", f.GetBlueVersion(), "green", f.GetGreenVersion()
		switch f.GetActive() {
		case rollwavev1.Slot_SLOT_GREEN:
			active, activeVersion, idle, idleVersion = idle, idleVersion, active, activeVersion
		case rollwavev1.Slot_SLOT_BLUE:
		default:
			parts = append(parts, f.GetApp()+":none")
			continue
		}
		s := f.GetApp() + ":" + active + "@" + activeVersion
		if idleVersion != "" {
			s += "(" + idle + " " + idleVersion + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}
