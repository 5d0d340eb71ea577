package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollwave/rollwave/internal/freeze"
	"github.com/rollwave/rollwave/internal/sattime"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newFreezeCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "freeze",
		Short: "Manage freeze windows: times when no phase starts",
		Long: `Freeze windows block rollouts: no phase starts inside one (phases already
running finish), and agents refuse to start a swap inside a window they were
sent. Windows are one-off (-from/-to) or recurring calendars (-cron,
-duration, -timezone), optionally scoped to apps and cells. A global freeze
blocks every release until it is turned off. An admin can let one release
through the windows: rollwave release override-freeze ID -reason R.`,
	})
	cmd.AddCommand(newFreezeAddCommand(a), newFreezeListCommand(a), newFreezeRemoveCommand(a), newFreezeGlobalCommand(a))
	return cmd
}

func newFreezeAddCommand(a *app) *cobra.Command {
	var from, to, reason, cronExpr, duration, zone string
	var apps, cells []string
	cmd := &cobra.Command{
		Use:   "add (-from RFC3339 -to RFC3339 | -cron EXPR -duration D [-timezone ZONE]) [-app A ...] [-cell C ...] -reason R",
		Short: "Add a freeze window: one-off or a recurring calendar",
		Long: `Add a one-off freeze window from -from to -to, both RFC 3339 times with a zone
("2026-12-24T00:00:00Z", "2026-12-24T00:00:00+01:00"), or a recurring one:
-cron, a standard 5-field cron expression (minute hour day-of-month month
day-of-week) or a descriptor (@daily, @weekly, @monthly, @yearly), gives
each occurrence's start, read in -timezone (an IANA zone, default UTC);
each occurrence lasts -duration (elapsed time, at most 31 days and no longer
than the gap between two occurrences; across a DST change it ends an hour
earlier or later on the wall clock).

-app and -cell (repeatable) narrow the window to those apps and cells; by
default it covers every release. Inside a window no phase starts, and
agents refuse to start a swap (they are sent the calendar), unless an
admin overrode the freezes for the release (rollwave release
override-freeze).`,
		Example: `  rollwave freeze add -from 2026-12-24T00:00:00Z -to 2026-12-27T00:00:00Z -reason "holidays"
  rollwave freeze add -cron "0 18 * * FRI" -duration 62h -timezone Europe/Berlin -reason "weekend"
  rollwave freeze add -cron "0 9 * * MON-FRI" -duration 1h -app payments -cell eu-1 -reason "daily settlement"`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reason == "" {
				return usageErrorf("-reason is required: say why rollouts are frozen")
			}
			req := &rollwavev1.AddFreezeRequest{Reason: reason, Actor: actor(), Apps: apps, Cells: cells}
			if cronExpr != "" {
				if from != "" || to != "" {
					return usageErrorf("-cron makes a recurring window; it takes no -from/-to")
				}
				if duration == "" {
					return usageErrorf("-cron needs -duration: how long each occurrence lasts (e.g. 62h)")
				}
				d, err := time.ParseDuration(duration)
				if err != nil {
					return usageErrorf("invalid -duration %q: want a duration such as 90m or 62h", duration)
				}
				req.Cron, req.DurationMs, req.Timezone = cronExpr, d.Milliseconds(), zone
			} else {
				if duration != "" || zone != "" {
					return usageErrorf("-duration and -timezone go with -cron (a recurring window)")
				}
				start, err := parseTimeFlag("from", from)
				if err != nil {
					return err
				}
				end, err := parseTimeFlag("to", to)
				if err != nil {
					return err
				}
				if !end.After(start) {
					return usageErrorf("-to %s must be after -from %s", to, from)
				}
				req.FromUnixNano, req.ToUnixNano = start.UnixNano(), end.UnixNano()
			}
			// The server checks again; checking here names the flag at fault.
			if err := freeze.Validate(&rollwavev1.FreezeWindow{FromUnixNano: req.FromUnixNano, ToUnixNano: req.ToUnixNano,
				Cron: req.Cron, DurationMs: req.DurationMs, Timezone: req.Timezone, Apps: apps, Cells: cells}, time.Now()); err != nil {
				return usageErrorf("invalid freeze window: %v", err)
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.AddFreeze, req)
			if err != nil {
				return err
			}
			w := resp.GetWindow()
			if freeze.Recurring(w) {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "Added freeze %s: %s\n", w.GetId(), calendarText(w))
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Added freeze %s: %s to %s\n",
				w.GetId(), timestamp(w.GetFromUnixNano()), timestamp(w.GetToUnixNano()))
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start of a one-off window (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "end of a one-off window (RFC 3339)")
	cmd.Flags().StringVar(&cronExpr, "cron", "", `recurring: when each occurrence starts (5-field cron or @weekly, …)`)
	cmd.Flags().StringVar(&duration, "duration", "", "recurring: how long each occurrence lasts (e.g. 62h)")
	cmd.Flags().StringVar(&zone, "timezone", "", "recurring: IANA zone the cron expression is read in (default UTC)")
	cmd.Flags().StringArrayVar(&apps, "app", nil, "only freeze this app (repeatable; default all)")
	cmd.Flags().StringArrayVar(&cells, "cell", nil, "only freeze this cell (repeatable; default all)")
	cmd.Flags().StringVar(&reason, "reason", "", "why rollouts are frozen")
	return cmd
}

// calendarText describes a recurring window: `"0 18 * * FRI" in
// Europe/Berlin for 62h0m0s`.
func calendarText(w *rollwavev1.FreezeWindow) string {
	zone := w.GetTimezone()
	if zone == "" {
		zone = "UTC"
	}
	return fmt.Sprintf("%q in %s for %s", w.GetCron(), zone, time.Duration(w.GetDurationMs())*time.Millisecond)
}

// scopeText is a window's scope: "all", or "apps=a,b cells=c".
func scopeText(w *rollwavev1.FreezeWindow) string {
	var parts []string
	if len(w.GetApps()) > 0 {
		parts = append(parts, "apps="+strings.Join(w.GetApps(), ","))
	}
	if len(w.GetCells()) > 0 {
		parts = append(parts, "cells="+strings.Join(w.GetCells(), ","))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// zoned formats t in the window's zone (RFC 3339), UTC if it is unknown.
func zoned(w *rollwavev1.FreezeWindow, unixNano int64) string {
	loc, err := freeze.LoadZone(w.GetTimezone())
	if err != nil {
		loc = time.UTC
	}
	return time.Unix(0, unixNano).In(loc).Format(time.RFC3339)
}

func parseTimeFlag(name, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, usageErrorf("-%s is required (RFC 3339, e.g. 2026-12-24T00:00:00Z)", name)
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, usageErrorf("invalid -%s %q: want an RFC 3339 time such as 2026-12-24T00:00:00Z", name, value)
	}
	// Windows travel as Unix nanoseconds, which wrap outside these years:
	// a -to of 3000-01-01 would arrive as a date in the past.
	if t.Before(time.Unix(0, 1)) || t.After(sattime.Latest) {
		return time.Time{}, usageErrorf("invalid -%s %q: must be between 1970-01-01T00:00:00Z and %s", name, value, sattime.Latest.Format(time.RFC3339))
	}
	return t, nil
}

func newFreezeListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List freeze windows and the global freeze",
		Long: `List freeze windows (one-off and recurring, with their scope and whether
each holds now, by the server's clock), the next three occurrences of each
recurring window in its zone and in UTC, and whether the global freeze is
on. With -json the whole response is printed as one object ({"windows":
[...], "schedules": [...], "global": ...}), since a bare array would drop the
global freeze; schedules[i] belongs to windows[i].`,
		Example: `  rollwave freeze list`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ListFreezes, &rollwavev1.ListFreezesRequest{})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, resp)
			}
			global := "off"
			if resp.GetGlobal() {
				global = "ON"
				if resp.GetGlobalReason() != "" {
					global += " (" + resp.GetGlobalReason() + ")"
				}
			}
			fmt.Fprintf(out, "Global freeze: %s\n\n", global)
			scheds := map[string]*rollwavev1.FreezeSchedule{}
			for _, s := range resp.GetSchedules() {
				scheds[s.GetWindowId()] = s
			}
			t := newTable(out, "ID", "FROM", "TO", "SCOPE", "ACTIVE", "REASON", "CREATED BY")
			for _, w := range resp.GetWindows() {
				from, to := timestamp(w.GetFromUnixNano()), timestamp(w.GetToUnixNano())
				if freeze.Recurring(w) {
					from, to = "every "+calendarText(w), ""
				}
				t.row(w.GetId(), from, to, scopeText(w), activeText(w, scheds[w.GetId()]), w.GetReason(), w.GetCreatedBy())
			}
			if err := t.flush(); err != nil {
				return err
			}
			// The next occurrences of each calendar, in its zone and UTC.
			for _, w := range resp.GetWindows() {
				s := scheds[w.GetId()]
				if !freeze.Recurring(w) || s == nil {
					continue
				}
				fmt.Fprintf(out, "\nNext occurrences of %s (%s):\n", w.GetId(), calendarText(w))
				if s.GetError() != "" {
					fmt.Fprintf(out, "  cannot be evaluated: %s\n", s.GetError())
				}
				for _, o := range s.GetNext() {
					fmt.Fprintf(out, "  %s to %s (%s to %s)\n", zoned(w, o.GetFromUnixNano()), zoned(w, o.GetToUnixNano()),
						timestamp(o.GetFromUnixNano()), timestamp(o.GetToUnixNano()))
				}
			}
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// activeText is the ACTIVE column: "until <end in the window's zone>",
// "no", or "-" from a server that sends no schedules.
func activeText(w *rollwavev1.FreezeWindow, s *rollwavev1.FreezeSchedule) string {
	switch {
	case s == nil:
		return ""
	case s.GetError() != "":
		return "yes (cannot be evaluated)"
	case s.GetActive():
		return "until " + zoned(w, s.GetActiveUntilUnixNano())
	}
	return "no"
}

func newFreezeRemoveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove ID",
		Short:   "Remove a freeze window",
		Example: `  rollwave freeze remove fz-3`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.RemoveFreeze, &rollwavev1.RemoveFreezeRequest{Id: args[0], Actor: actor()}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Removed freeze %s\n", args[0])
			return err
		},
	}
}

func newFreezeGlobalCommand(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "global on|off [-reason R]",
		Short: "Turn the global freeze on or off",
		Long:  `Turn the global freeze on (no phase of any release starts) or off.`,
		Example: `  rollwave freeze global on -reason "incident INC-1234"
  rollwave freeze global off`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
				return usageErrorf("%s needs exactly one argument, on or off; got %q", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			on := args[0] == "on"
			if _, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.SetGlobalFreeze, &rollwavev1.SetGlobalFreezeRequest{On: on, Reason: reason, Actor: actor()}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Global freeze %s\n", args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func newReleaseOverrideFreezeCommand(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "override-freeze ID -reason R",
		Short: "Let a release through freeze windows (admin, audited)",
		Long: `Let one release start its phases inside freeze windows (one-off and
recurring): an emergency override, for admins only, recorded once as a
freeze.overridden event with who and why. The release's orders carry the
override, so its hosts' agents start their swaps inside windows they know
of. The global freeze is not overridden (turn it off instead).`,
		Example: `  rollwave release override-freeze api-2.4.1 -reason "hotfix for INC-1234"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageErrorf("-reason is required: an override is audited")
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.OverrideFreeze,
				&rollwavev1.ReleaseActionRequest{Id: args[0], Reason: reason, Actor: actor()})
			if err != nil {
				return err
			}
			r := resp.GetRelease()
			ov := r.GetFreezeOverride()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Release %s: %s; freeze windows overridden by %s at %s: %s\n",
				r.GetId(), releaseStateName(r.GetState()), ov.GetActor(), timestamp(ov.GetTimeUnixNano()), ov.GetReason())
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log (required)")
	return cmd
}
