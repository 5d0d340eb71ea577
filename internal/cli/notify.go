package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newNotifyCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Show notification targets (webhooks, Slack) and their delivery",
		Long: `Notification targets are the notify "NAME" blocks of the servers' config
files: the leader POSTs each subscribed audit event to every target, at
least once and in order, and records in raft how far it got.`,
		Args: exactArgs(),
	}
	cmd.AddCommand(newNotifyStatusCommand(a))
	return cmd
}

func newNotifyStatusCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each notification target's cursor, lag and last error",
		Long: `Show, for every notification target of the leader's config: its type and
URL (credentials and secret path parts hidden), the event seq it has been
delivered up to (the cursor), how far it lags behind the newest event (in
events and in seconds), the last success, the last error and when it
happened, and the attempts, failures and deliveries this leader counted
since it started. Events lost to retention before delivery are counted.

Followers forward the request to the leader, which alone knows the
attempts and errors.`,
		Example: `  rollwave notify status
  rollwave notify status -json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.NotifyStatus, &rollwavev1.NotifyStatusRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "targets", resp.GetTargets())
			}
			out := cmd.OutOrStdout()
			if len(resp.GetTargets()) == 0 {
				_, err := fmt.Fprintln(out, "No notification targets: add notify \"NAME\" { } blocks to the servers' config files.")
				return err
			}
			now := a.now()
			t := newTable(out, "NAME", "TYPE", "URL", "CURSOR", "LAG", "LAST SUCCESS", "LAST ERROR", "ATTEMPTS", "FAILURES")
			for _, s := range resp.GetTargets() {
				lag := "0"
				if s.GetLagEvents() > 0 {
					lag = fmt.Sprintf("%d events, %s", s.GetLagEvents(), shortDuration(time.Duration(s.GetLagSeconds()*float64(time.Second))))
				}
				lastErr := ""
				if s.GetLastError() != "" {
					lastErr = s.GetLastError() + " (" + ago(now, s.GetLastErrorUnixNano()) + ")"
				}
				t.row(s.GetName(), s.GetType(), s.GetUrl(), fmt.Sprintf("%d/%d", s.GetCursor(), s.GetLastEventSeq()), lag,
					ago(now, s.GetLastSuccessUnixNano()), lastErr, uitoa(s.GetAttempts()), uitoa(s.GetFailures()))
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, s := range resp.GetTargets() {
				if s.GetLostEvents() > 0 {
					fmt.Fprintf(out, "\n%s: %d event(s) lost to retention before delivery; last: %s\n", s.GetName(), s.GetLostEvents(), s.GetLastLoss())
				}
			}
			if id := resp.GetLeaderId(); id != "" {
				fmt.Fprintf(out, "\nAs seen by the leader, %s; events: %s\n", id, eventsSummary(resp.GetTargets()))
			}
			return nil
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// eventsSummary lists each target's subscriptions: "ops=gate.failed,release.*".
func eventsSummary(ts []*rollwavev1.NotifyTargetStatus) string {
	var parts []string
	for _, s := range ts {
		parts = append(parts, s.GetName()+"="+strings.Join(s.GetEvents(), ","))
	}
	return strings.Join(parts, "; ")
}
