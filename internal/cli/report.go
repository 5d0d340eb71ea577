package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// maxReportDays bounds -since: retention keeps far less, and a larger
// number is a typo.
const maxReportDays = 3660

// parseSince reads -since: a whole number of days or hours, "30d" or "12h".
func parseSince(s string) (time.Duration, error) {
	bad := func(why string) error {
		return usageErrorf("-since %q: %s; give a whole number of days or hours, such as 30d or 12h", s, why)
	}
	if len(s) < 2 {
		return 0, bad("too short")
	}
	unit := time.Hour
	switch s[len(s)-1] {
	case 'd':
		unit = 24 * time.Hour
	case 'h':
	default:
		return 0, bad("the unit must be d (days) or h (hours)")
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	switch {
	case err != nil:
		return 0, bad("not a whole number")
	case n <= 0:
		return 0, bad("must be more than 0")
	case time.Duration(n)*unit > maxReportDays*24*time.Hour:
		return 0, bad(fmt.Sprintf("longer than %d days", maxReportDays))
	}
	return time.Duration(n) * unit, nil
}

func newReportCommand(a *app) *cobra.Command {
	var (
		appName, since string
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "report [-app A] [-since 30d] [-json]",
		Short: "Delivery and incident figures per app from the release history",
		Long: `Report deployment frequency, lead time, change failure ratio, time to
restore, time to acknowledge (MTTA), mean time between failures (MTBF) and
mean time to failure (MTTF) per app, and for all apps together, over the
window from -since ago until now. The server computes them from its replica
of the release history (a follower answers too); the definitions are in
docs/operations.md ("Delivery and incident report").

A figure without data is n/a (-1 in -json), never 0: MTBF needs two
failures, time to restore a failure that rolled back, MTTA an
acknowledged one ("rollwave release ack").`,
		Example: `  rollwave report
  rollwave report -app api -since 7d
  rollwave report -since 12h -json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := parseSince(since)
			if err != nil {
				return err
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.Report, &rollwavev1.ReportRequest{
				App: appName, SinceUnixNano: a.now().Add(-window).UnixNano(),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "apps", resp.GetApps())
			}
			w := cmd.OutOrStdout()
			if _, err := fmt.Fprintf(w, "From %s to %s (%s)\n\n", timestamp(resp.GetSinceUnixNano()), timestamp(resp.GetUntilUnixNano()), since); err != nil {
				return err
			}
			t := newTable(w, "APP", "DEPLOYS", "PER DAY", "LEAD P50", "LEAD P90", "CHANGES", "FAILED", "CFR",
				"FAILURES", "TTR P50", "TTR MAX", "MTTA", "MTBF", "MTTF")
			for _, r := range resp.GetApps() {
				t.row(r.GetApp(), strconv.Itoa(int(r.GetDeployments())), strconv.FormatFloat(r.GetDeploymentsPerDay(), 'f', 2, 64),
					reportMs(r.GetLeadTimeMedianMs()), reportMs(r.GetLeadTimeP90Ms()),
					strconv.Itoa(int(r.GetChanges())), strconv.Itoa(int(r.GetFailedChanges())), reportRatio(r.GetChangeFailureRatio()),
					strconv.Itoa(int(r.GetFailures())), reportMs(r.GetTimeToRestoreMedianMs()), reportMs(r.GetTimeToRestoreMaxMs()),
					reportMs(r.GetMttaMs()), reportMs(r.GetMtbfMs()), reportMs(r.GetMttfMs()))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&appName, "app", "", "only this app (default: every app, then all together)")
	cmd.Flags().StringVar(&since, "since", "30d", "window start, days or hours before now: 30d, 12h")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// reportMs prints a duration of the report, or n/a (-1).
func reportMs(ms int64) string {
	if ms < 0 {
		return "n/a"
	}
	if ms == 0 {
		return "0s"
	}
	d := time.Duration(ms) * time.Millisecond
	if d >= 48*time.Hour {
		// "3d4h" reads better than "76h0m" over weeks.
		d = d.Round(time.Minute)
		out := fmt.Sprintf("%dd", d/(24*time.Hour))
		if h := d % (24 * time.Hour) / time.Hour; h > 0 {
			out += fmt.Sprintf("%dh", h)
		}
		if m := d % time.Hour / time.Minute; m > 0 {
			out += fmt.Sprintf("%dm", m)
		}
		return out
	}
	return shortDuration(d)
}

// reportRatio prints a ratio as a percentage, or n/a (-1).
func reportRatio(r float64) string {
	if r < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
}

func newReleaseAckCommand(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "ack ID [-reason R]",
		Short: "Acknowledge a failed release's alert",
		Long: `Acknowledge that a failed release (a gate failed, or it rolled back or
failed) is being looked at. The acknowledgement is recorded once, with who
and when, as a release.acked event; "rollwave report" measures the time to
acknowledge (MTTA) from the failure to it. A release that did not fail, or
one already acknowledged, is refused.`,
		Example: `  rollwave release ack api-2.4.0 -reason "paged, looking at the error rate"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.AckRelease,
				&rollwavev1.ReleaseActionRequest{Id: args[0], Reason: reason, Actor: actor()})
			if err != nil {
				return err
			}
			r := resp.GetRelease()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Release %s: %s; failure acknowledged by %s at %s\n",
				r.GetId(), releaseStateName(r.GetState()), r.GetAckedBy(), timestamp(r.GetAckedUnixNano()))
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
