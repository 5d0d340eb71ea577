package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newChainCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "chain",
		Short: "Submit, watch and roll back release chains",
		Long: `A chain is releases that start one after another: each starts once the one
before it succeeded on every targeted host with no drifted host and its
min_gap passed (a data-format change: first deploy code that reads the new
format, then code that writes it). While a later release is live, the
earlier ones cannot be rolled back alone; "chain rollback" goes last to
first. Chains are described in chain "NAME" { release "A" {...}
release "B" { after = "A" min_gap = "1h" ... } } files.`,
	})
	cmd.AddCommand(
		newChainSubmitCommand(a, false),
		newChainSubmitCommand(a, true),
		newChainStatusCommand(a),
		newChainListCommand(a),
		newChainRollbackCommand(a),
	)
	return cmd
}

func newChainSubmitCommand(a *app, start bool) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a chain spec; its first release waits, pending, until started",
		Long: `Submit the chain described in FILE (HCL, or JSON when FILE ends in .json).
The coordinator validates every release of it, plans the first and stores
the chain with its first release pending ("rollwave release resume ID"
starts it). The later releases start on their own. Spec errors name FILE,
line and column, and the release.`,
		Example: `  rollwave chain submit orders-format-v5.hcl`,
		Args:    exactArgs("FILE"),
	}
	if start {
		cmd.Use = "start FILE"
		cmd.Short = "Submit a chain spec and start its first release at once"
		cmd.Long = `Submit the chain described in FILE and start its first release. The later
releases start on their own, each once the one before it succeeded on every
targeted host with no drifted host and its min_gap passed. Follow it with
"rollwave chain status NAME".`
		cmd.Example = `  rollwave chain start orders-format-v5.hcl`
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name, src, err := readSpec(args[0])
		if err != nil {
			return err
		}
		resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.SubmitChain, &rollwavev1.SubmitChainRequest{
			SourceName: name, Source: src, Start: start, Actor: actor(),
		})
		if err != nil {
			return err
		}
		c := resp.GetChain()
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), c)
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "Chain %s submitted with %d releases; first: %s\n", c.GetName(), len(c.GetSteps()), c.GetSteps()[0].GetName())
		fmt.Fprintf(out, "Follow it with: rollwave chain status %s\n", c.GetName())
		return nil
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newChainStatusCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a chain: each release's state, the gap left and why the next one waits",
		Example: `  rollwave chain status orders-format-v5
  rollwave chain status orders-format-v5 -json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.GetChain, &rollwavev1.GetChainRequest{Name: args[0]})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), resp)
			}
			return printChain(cmd, resp)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func chainStateName(s rollwavev1.ChainState) string { return enumName(s.String(), "CHAIN_STATE_") }

func printChain(cmd *cobra.Command, resp *rollwavev1.GetChainResponse) error {
	out := cmd.OutOrStdout()
	c := resp.GetChain()
	if err := keyValues(out,
		"Chain", c.GetName(),
		"State", chainStateName(c.GetState()),
		"Reason", c.GetReason(),
		"Created", timestamp(c.GetCreatedUnixNano())+" by "+c.GetCreatedBy(),
	); err != nil {
		return err
	}
	fmt.Fprintln(out)
	t := newTable(out, "#", "RELEASE", "AFTER", "MIN GAP", "APP", "VERSION", "STATE", "GAP LEFT", "WAITING", "REVERT")
	for i, ss := range resp.GetSteps() {
		step := c.GetSteps()[i]
		state := "not started"
		if r := ss.GetRelease(); r != nil {
			state = releaseStateName(r.GetState())
		}
		gap := "-"
		if ms := ss.GetGapRemainingMs(); ms > 0 {
			gap = shortDuration(time.Duration(ms) * time.Millisecond)
		}
		revert := "-"
		if r := ss.GetRevert(); r != nil {
			revert = r.GetId() + " (" + releaseStateName(r.GetState()) + ")"
		}
		after, minGap, waiting := step.GetAfter(), msDuration(step.GetMinGapMs()), ss.GetWaiting()
		if after == "" {
			after, minGap = "-", "-"
		}
		if waiting == "" {
			waiting = "-"
		}
		t.row(fmt.Sprint(i+1), ss.GetName(), after, minGap, step.GetSpec().GetApp(), step.GetSpec().GetVersion(), state, gap, waiting, revert)
	}
	return t.flush()
}

func newChainListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List chains with their state and each release's state",
		Example: `  rollwave chain list`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ListChains, &rollwavev1.ListChainsRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "chains", resp.GetChains())
			}
			t := newTable(cmd.OutOrStdout(), "CHAIN", "STATE", "RELEASES", "WAITING")
			for _, cs := range resp.GetChains() {
				steps, waiting := "", "-"
				for i, ss := range cs.GetSteps() {
					state := "not started"
					if r := ss.GetRelease(); r != nil {
						state = releaseStateName(r.GetState())
					}
					if i > 0 {
						steps += " -> "
					}
					steps += ss.GetName() + " (" + state + ")"
					if ss.GetWaiting() != "" {
						waiting = ss.GetWaiting()
					}
				}
				t.row(cs.GetChain().GetName(), chainStateName(cs.GetChain().GetState()), steps, waiting)
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newChainRollbackCommand(a *app) *cobra.Command {
	var asJSON bool
	var reason string
	cmd := &cobra.Command{
		Use:   "rollback NAME [-reason R]",
		Short: "Roll a chain back, last release first",
		Long: `Roll the chain back, last release first: a release still rolling out is
rolled back in place; a succeeded one is followed by a revert release that
brings its app back to the version it ran before (the app's previous
succeeded release). Each waits for the one after it. Refused, changing
nothing, when a succeeded release of the chain has no earlier version to go
back to.`,
		Example: `  rollwave chain rollback orders-format-v5 -reason "readers fail on v5 records"`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.RollbackChain, &rollwavev1.ChainActionRequest{
				Name: args[0], Reason: reason, Actor: actor(),
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), resp)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Chain %s: %s\n\n", args[0], chainStateName(resp.GetChain().GetState()))
			return printChain(cmd, resp)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the chain is rolled back (recorded in the events)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}
