package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// actionCall is an OperatorService method taking a ReleaseActionRequest, as
// a method expression (rollwavev1.OperatorServiceClient.PauseRelease).
type actionCall func(rollwavev1.OperatorServiceClient, context.Context, *rollwavev1.ReleaseActionRequest, ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)

// releaseAction describes one of the release commands that take an ID and an
// optional -reason and change the release's state.
type releaseAction struct {
	name, short, long, example string
	call                       actionCall
}

var releaseActions = []releaseAction{
	{
		name:    "pause",
		short:   "Pause a running release before its next step",
		long:    `Pause a release: hosts already switched stay as they are and no new host or phase starts until "rollwave release resume".`,
		example: `  rollwave release pause api-2.4.0 -reason "investigating latency"`,
		call:    rollwavev1.OperatorServiceClient.PauseRelease,
	},
	{
		name:    "resume",
		short:   "Resume a paused release, or start a pending one",
		long:    `Resume a paused release where it stopped. A pending (submitted, not started) release starts: it is planned again against the hosts alive now, the difference from the preview is recorded in a release.replanned event, and it is refused, changing nothing, if no host matches its target.`,
		example: `  rollwave release resume api-2.4.0`,
		call:    rollwavev1.OperatorServiceClient.ResumeRelease,
	},
	{
		name:    "approve",
		short:   "Approve a release waiting for approval after a phase",
		long:    `Approve a release in awaiting_approval so that its next phase starts.`,
		example: `  rollwave release approve api-2.4.0 -reason "canary looks good"`,
		call:    rollwavev1.OperatorServiceClient.ApproveRelease,
	},
	{
		name:    "abort",
		short:   "Stop a release where it is, without reverting hosts",
		long:    `Abort a release: it stops where it is and nothing reverts; hosts keep the slot they serve from. Use "rollback" to go back to the old version instead.`,
		example: `  rollwave release abort api-2.4.0 -reason "superseded by 2.4.1"`,
		call:    rollwavev1.OperatorServiceClient.AbortRelease,
	},
	{
		name:    "rollback",
		short:   "Switch every host of a release back to its old slot",
		long:    `Roll a release back: every host that switched to the new version switches back to its old slot.`,
		example: `  rollwave release rollback api-2.4.0 -reason "error rate up"`,
		call:    rollwavev1.OperatorServiceClient.RollbackRelease,
	},
}

func newReleaseActionCommand(a *app, act releaseAction) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     act.name + " ID [-reason R]",
		Short:   act.short,
		Long:    act.long + "\n\nThe reason is recorded in the release's audit events.",
		Example: act.example,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReleaseAction(a, cmd, act.call, &rollwavev1.ReleaseActionRequest{Id: args[0], Reason: reason})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func newReleasePromoteCommand(a *app) *cobra.Command {
	var (
		reason   string
		skipBake bool
	)
	cmd := &cobra.Command{
		Use:   "promote ID -skip-bake [-reason R]",
		Short: "Skip the current bake and move to the next phase (emergency)",
		Long: `Promote a release past its current bake: the next phase starts without
waiting for the bake to finish. This is an emergency measure and is recorded
as one, so it needs -skip-bake to say so explicitly, and should carry a
-reason.`,
		Example: `  rollwave release promote api-2.4.0 -skip-bake -reason "security fix, INC-1234"`,
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !skipBake {
				return usageErrorf("promote skips the current bake: pass -skip-bake to confirm")
			}
			return runReleaseAction(a, cmd, rollwavev1.OperatorServiceClient.PromoteRelease,
				&rollwavev1.ReleaseActionRequest{Id: args[0], Reason: reason, SkipBake: true})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.Flags().BoolVar(&skipBake, "skip-bake", false, "confirm skipping the current bake")
	return cmd
}

func runReleaseAction(a *app, cmd *cobra.Command, call actionCall, req *rollwavev1.ReleaseActionRequest) error {
	req.Actor = actor()
	resp, err := invoke(a, cmd, call, req)
	if err != nil {
		return err
	}
	return printReleaseLine(cmd.OutOrStdout(), resp.GetRelease())
}

// printReleaseLine prints "Release ID: state (reason)".
func printReleaseLine(w io.Writer, r *rollwavev1.Release) error {
	line := fmt.Sprintf("Release %s: %s", r.GetId(), releaseStateName(r.GetState()))
	if r.GetReason() != "" {
		line += " (" + r.GetReason() + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func newReleaseConvergeCommand(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "converge APP [-reason R]",
		Short: "Roll an app's drifted hosts to its last succeeded release",
		Long: `Converge an app: its drifted hosts (in the target of its last succeeded
release but not on its version; see "rollwave hosts -drift") get that release
through a new convergence release, APP-RELEASE-converge-N: the same spec and
gates, one host per phase, audited like any release (its events say which
release it converges). Drifted hosts not connected to the leader are left out
and listed. Refused while the app has an active release.

With converge = "auto" in the release spec the leader does this by itself,
one host at a time, backing off after a host fails to converge.`,
		Example: `  rollwave release converge api -reason "db-3 back from maintenance"`,
		Args:    exactArgs("APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ConvergeRelease,
				&rollwavev1.ConvergeReleaseRequest{App: args[0], Reason: reason, Actor: actor()})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if err := printReleaseLine(w, resp.GetRelease()); err != nil {
				return err
			}
			for _, d := range resp.GetSkipped() {
				if _, err := fmt.Fprintf(w, "left out (not connected): %s: %s\n", d.GetHost(), d.GetReason()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}
