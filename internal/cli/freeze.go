package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollwave/rollwave/internal/sattime"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newFreezeCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "freeze",
		Short: "Manage freeze windows: times when no phase starts",
		Long: `Freeze windows block rollouts: no phase starts inside one (phases already
running finish). A global freeze blocks every release until it is turned off.`,
	})
	cmd.AddCommand(newFreezeAddCommand(a), newFreezeListCommand(a), newFreezeRemoveCommand(a), newFreezeGlobalCommand(a))
	return cmd
}

func newFreezeAddCommand(a *app) *cobra.Command {
	var from, to, reason string
	cmd := &cobra.Command{
		Use:     "add -from RFC3339 -to RFC3339 -reason R",
		Short:   "Add a freeze window",
		Long:    `Add a freeze window from -from to -to, both RFC 3339 times with a zone ("2026-12-24T00:00:00Z", "2026-12-24T00:00:00+01:00").`,
		Example: `  rollwave freeze add -from 2026-12-24T00:00:00Z -to 2026-12-27T00:00:00Z -reason "holidays"`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			if reason == "" {
				return usageErrorf("-reason is required: say why rollouts are frozen")
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.AddFreeze, &rollwavev1.AddFreezeRequest{
				FromUnixNano: start.UnixNano(), ToUnixNano: end.UnixNano(), Reason: reason, Actor: actor(),
			})
			if err != nil {
				return err
			}
			w := resp.GetWindow()
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Added freeze %s: %s to %s\n",
				w.GetId(), timestamp(w.GetFromUnixNano()), timestamp(w.GetToUnixNano()))
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start of the window (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "end of the window (RFC 3339)")
	cmd.Flags().StringVar(&reason, "reason", "", "why rollouts are frozen")
	return cmd
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
		Long: `List freeze windows and whether the global freeze is on. With -json the
whole response is printed as one object ({"windows": [...], "global": ...}),
since a bare array would drop the global freeze.`,
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
			t := newTable(out, "ID", "FROM", "TO", "REASON", "CREATED BY")
			for _, w := range resp.GetWindows() {
				t.row(w.GetId(), timestamp(w.GetFromUnixNano()), timestamp(w.GetToUnixNano()), w.GetReason(), w.GetCreatedBy())
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
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
