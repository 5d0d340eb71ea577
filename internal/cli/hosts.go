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
35s). -json lists the hosts as the server returns them, without notes.`,
		Example: `  rollwave hosts
  rollwave hosts -cell eu-1a
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
			resp, err := client.ListHosts(ctx, &rollwavev1.ListHostsRequest{Cell: cell})
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
			t := newTable(cmd.OutOrStdout(), "HOST", "CELL", "REGION", "LIVENESS", "CONNECTED", "LAST CONTACT", "APPS", "NOTE")
			for _, hv := range resp.GetHosts() {
				h := hv.GetHost()
				t.row(h.GetId(), h.GetCell(), h.GetRegion(), hv.GetLiveness(), yesNo(hv.GetConnected()),
					ago(now, h.GetLastContactUnixNano()), appsString(h.GetApps()), strings.Join(notes[h.GetId()], "; "))
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	cmd.Flags().StringVar(&cell, "cell", "", "only hosts in this cell")
	return cmd
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
