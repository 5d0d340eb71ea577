package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newHostsCommand(a *app) *cobra.Command {
	var (
		asJSON  bool
		cell    string
		drift   bool
		metrics bool
	)
	cmd := &cobra.Command{
		Use:   "hosts [HOST]",
		Short: "List hosts with their liveness and app slots, or show one host",
		Long: `List the hosts the cluster knows, optionally only those of one cell.
With a HOST argument, show that host: its slots, last contact and the
latest heartbeat the leader received from it (host CPU and memory, each
slot's CPU, RSS and restarts, and what the agent's traffic proxy saw per
slot since the previous heartbeat: requests, errors, p99 latency).

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
"rollwave release converge APP" rolls them to the release.

-metrics adds CPU and MEM columns (host-wide, from the latest heartbeat the
leader received; "-" when it has none) and, with -json, each host's
"metrics" object. Heartbeats are kept in the leader's memory only: a
listing answered without a leader has none.`,
		Example: `  rollwave hosts
  rollwave hosts -cell eu-1a
  rollwave hosts -drift
  rollwave hosts -metrics
  rollwave hosts web-1
  rollwave hosts -json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("%s takes at most one argument (a host id), got %q", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := a.unary(cmd)
			defer cancel()
			if len(args) == 1 {
				if cell != "" || drift {
					return usageErrorf("-cell and -drift filter the list; leave them out with a HOST argument")
				}
				return showHost(cmd, a, client, ctx, args[0], asJSON)
			}
			resp, err := client.ListHosts(ctx, &rollwavev1.ListHostsRequest{Cell: cell, DriftOnly: drift, Metrics: metrics})
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
			if metrics {
				cols = append(cols, "CPU", "MEM")
			}
			if drift {
				cols = append(cols, "DRIFT")
			}
			t := newTable(cmd.OutOrStdout(), cols...)
			for _, hv := range resp.GetHosts() {
				h := hv.GetHost()
				row := []string{h.GetId(), h.GetCell(), h.GetRegion(), hv.GetLiveness(), yesNo(hv.GetConnected()),
					ago(now, h.GetLastContactUnixNano()), appsString(h.GetApps()), strings.Join(notes[h.GetId()], "; ")}
				if metrics {
					if m := hv.GetMetrics().GetHost(); m != nil {
						row = append(row, percent(m.GetCpuPercent()), percent(m.GetMemPercent()))
					} else {
						row = append(row, "", "")
					}
				}
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
	cmd.Flags().BoolVar(&metrics, "metrics", false, "add each host's CPU and memory from its latest heartbeat (-json: the whole sample)")
	return cmd
}

// showHost prints one host with its latest heartbeat; -json prints the
// host's HostView object (metrics included).
func showHost(cmd *cobra.Command, a *app, client rollwavev1.OperatorServiceClient, ctx context.Context, id string, asJSON bool) error {
	resp, err := client.ListHosts(ctx, &rollwavev1.ListHostsRequest{Host: id, Metrics: true})
	if err != nil {
		return err
	}
	var hv *rollwavev1.HostView
	for _, v := range resp.GetHosts() {
		if v.GetHost().GetId() == id {
			hv = v
		}
	}
	if hv == nil {
		return status.Errorf(codes.NotFound, "no host %q: the cluster does not know it (rollwave hosts lists every host)", id)
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), hv)
	}
	h, m, now := hv.GetHost(), hv.GetMetrics(), a.now()
	heartbeat := "none received by the leader"
	cpu, mem := "", ""
	if m != nil {
		heartbeat = ago(now, m.GetReceivedUnixNano())
		cpu, mem = percent(m.GetHost().GetCpuPercent()), percent(m.GetHost().GetMemPercent())
	}
	out := cmd.OutOrStdout()
	if err := keyValues(out, "Host", h.GetId(), "Cell", h.GetCell(), "Region", h.GetRegion(), "Address", h.GetAddress(),
		"Agent", h.GetAgentVersion(), "Liveness", hv.GetLiveness(), "Connected", yesNo(hv.GetConnected()),
		"Last contact", ago(now, h.GetLastContactUnixNano()), "Apps", appsString(h.GetApps()),
		"Last heartbeat", heartbeat, "CPU", cpu, "Memory", mem); err != nil {
		return err
	}
	if len(m.GetSlots()) > 0 {
		fmt.Fprintln(out)
		t := newTable(out, "APP", "SLOT", "VERSION", "HEALTHY", "CPU", "RSS", "RESTARTS")
		for _, sl := range m.GetSlots() {
			t.row(sl.GetApp(), enumName(sl.GetSlot().String(), "SLOT_"), sl.GetVersion(), yesNo(sl.GetHealthy()),
				percent(sl.GetCpuPercent()), mebibytes(sl.GetRssBytes()), strconv.FormatUint(uint64(sl.GetRestarts()), 10))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(m.GetRequests()) > 0 {
		fmt.Fprintln(out)
		t := newTable(out, "APP", "SLOT", "VERSION", "PROTOCOL", "REQUESTS", "ERRORS", "P99")
		for _, r := range m.GetRequests() {
			t.row(r.GetApp(), enumName(r.GetSlot().String(), "SLOT_"), r.GetVersion(), r.GetProtocol(), uitoa(r.GetRequests()),
				uitoa(r.GetErrors()), fmt.Sprintf("%.1fms", r.GetP99Ms()))
		}
		return t.flush()
	}
	return nil
}

func percent(v float64) string { return fmt.Sprintf("%.1f%%", v) }

// mebibytes renders a byte count as "64.0MiB".
func mebibytes(b uint64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }

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
