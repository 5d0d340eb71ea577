package cli

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newReleaseCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "release",
		Short: "Plan, start, watch and steer releases",
		Long: `A release rolls one version of an app out across the targeted hosts in
phases: a canary, then growing waves, each baked and checked against its
gates before the next. Releases are described in HCL (or JSON) spec files.`,
	})
	cmd.AddCommand(
		newReleaseSubmitCommand(a, false),
		newReleaseSubmitCommand(a, true),
		newReleasePlanCommand(a),
		newReleaseGetCommand(a),
		newReleaseListCommand(a),
		newReleasePromoteCommand(a),
		newReleaseEventsCommand(a),
		newReleaseStatusCommand(a),
		newReleaseConvergeCommand(a),
		newReleaseAckCommand(a),
	)
	for _, act := range releaseActions {
		cmd.AddCommand(newReleaseActionCommand(a, act))
	}
	return cmd
}

// readSpec reads a release spec file. The path is sent to the server as
// given, so its errors name the file as the operator typed it
// ("bad.hcl:21:14: …").
func readSpec(path string) (string, []byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("reading release spec: %w", err)
	}
	return path, src, nil
}

func newReleaseSubmitCommand(a *app, start bool) *cobra.Command {
	var asJSON bool
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a release spec; it waits, pending, until started",
		Long: `Submit the release described in FILE (HCL, or JSON when FILE ends in .json).
The coordinator validates the spec, computes its plan and stores the release
as pending. Spec errors name FILE, line and column.`,
		Example: `  rollwave release submit api-2.4.0.hcl`,
	}
	if start {
		cmd.Use = "start FILE"
		cmd.Short = "Submit a release spec and start rolling it out at once"
		cmd.Long = `Submit the release described in FILE (HCL, or JSON when FILE ends in .json)
and start it: the first phase begins as soon as the leader gets to it.
Follow it with "rollwave release status ID -watch".

With -wait (for CI pipelines), stay and print one line per change until the
release ends, as "release status ID -wait" does; -timeout then bounds the
whole wait (default 30m). Exit codes: 0 succeeded; 1 rolled back, failed or
aborted; 3 timed out (still running, paused or waiting for approval —
nothing is stopped); 2 usage; 4–9 the coordinator refused the request.`
		cmd.Example = `  rollwave release start api-2.4.0.hcl
  rollwave release start api-2.4.0.hcl -wait -timeout 45m`
	}
	cmd.Args = exactArgs("FILE")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name, src, err := readSpec(args[0])
		if err != nil {
			return err
		}
		resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.SubmitRelease, &rollwavev1.SubmitReleaseRequest{
			SourceName: name, Source: src, Start: start, Actor: actor(),
		})
		if err != nil {
			return err
		}
		r := resp.GetRelease()
		if wf.wait {
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			if !asJSON {
				fmt.Fprintf(cmd.OutOrStdout(), "Release %s submitted and started; waiting for it to end\n", r.GetId())
			}
			return a.waitRelease(cmd, client, r.GetId(), a.waitTimeout(cmd), asJSON)
		}
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), r)
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "Release %s submitted: %s\n", r.GetId(), releaseStateName(r.GetState()))
		if start {
			fmt.Fprintf(out, "Follow it with: rollwave release status %s -watch\n", r.GetId())
		}
		return nil
	}
	addJSONFlag(cmd, &asJSON)
	if start {
		addWaitFlag(cmd, &wf)
	}
	return cmd
}

func newReleasePlanCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the phases a release spec would roll out in, without submitting it",
		Long: `Compute the plan for the release described in FILE against the cluster's
current hosts and cells, and print its phases: hosts, cells and bake time.
Nothing is stored.`,
		Example: `  rollwave release plan api-2.4.0.hcl
  rollwave release plan api-2.4.0.hcl -json`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, src, err := readSpec(args[0])
			if err != nil {
				return err
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.PlanRelease, &rollwavev1.PlanReleaseRequest{SourceName: name, Source: src})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), resp)
			}
			out := cmd.OutOrStdout()
			spec := resp.GetSpec()
			fmt.Fprintf(out, "Release %s: %s %s to %d hosts in %d phases\n\n",
				spec.GetName(), spec.GetApp(), spec.GetVersion(), resp.GetTargetedHosts(), len(resp.GetPhases()))
			t := newTable(out, "PHASE", "HOSTS", "HOST NAMES", "CELLS", "BAKE", "APPROVAL")
			for _, p := range resp.GetPhases() {
				approval := ""
				if p.GetApprovalRequired() {
					approval = "required"
				}
				t.row(strconv.Itoa(int(p.GetIndex())), strconv.Itoa(len(p.GetHosts())), truncateList(p.GetHosts(), 3),
					strings.Join(p.GetCells(), ","), msDuration(p.GetBakeMs()), approval)
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newReleaseGetCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a release and its host assignments",
		Example: `  rollwave release get api-2.4.0
  rollwave release get api-2.4.0 -json`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.GetRelease, &rollwavev1.GetReleaseRequest{Id: args[0]})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), resp)
			}
			out := cmd.OutOrStdout()
			if err := releaseHeader(out, a.now(), resp.GetRelease()); err != nil {
				return err
			}
			fmt.Fprintln(out)
			assignments := resp.GetAssignments()
			sort.SliceStable(assignments, func(i, j int) bool {
				if assignments[i].GetPhase() != assignments[j].GetPhase() {
					return assignments[i].GetPhase() < assignments[j].GetPhase()
				}
				return assignments[i].GetHost() < assignments[j].GetHost()
			})
			t := newTable(out, "HOST", "PHASE", "STATE", "VERSION", "SLOT", "GENERATION", "UPDATED", "REASON")
			for _, as := range assignments {
				t.row(as.GetHost(), strconv.Itoa(int(as.GetPhase())), assignmentStateName(as.GetState()), as.GetVersion(),
					slotName(as.GetTargetSlot()), uitoa(as.GetGeneration()), timestamp(as.GetUpdatedUnixNano()), as.GetReason())
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newReleaseListCommand(a *app) *cobra.Command {
	var (
		asJSON  bool
		appName string
		states  []string
	)
	cmd := &cobra.Command{
		Use:   "list [-app A] [-state S]...",
		Short: "List releases, optionally by app and state",
		Long: `List releases, newest first as the coordinator returns them. -state may be
repeated or comma-separated: ` + strings.Join(releaseStateNames(), ", ") + `.`,
		Example: `  rollwave release list
  rollwave release list -app api -state running,paused`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &rollwavev1.ListReleasesRequest{App: appName}
			for _, s := range states {
				st, err := parseReleaseState(s)
				if err != nil {
					return err
				}
				req.States = append(req.States, st)
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ListReleases, req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "releases", resp.GetReleases())
			}
			t := newTable(cmd.OutOrStdout(), "ID", "APP", "VERSION", "STATE", "PHASES VERIFIED", "CREATED", "CREATED BY")
			for _, r := range resp.GetReleases() {
				t.row(r.GetId(), r.GetSpec().GetApp(), r.GetSpec().GetVersion(), releaseStateName(r.GetState()),
					phaseProgress(r), timestamp(r.GetCreatedUnixNano()), r.GetCreatedBy())
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	cmd.Flags().StringVar(&appName, "app", "", "only releases of this app")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only releases in these states (repeatable, comma-separated)")
	return cmd
}

// releaseStateNames lists the states -state accepts, in protocol order.
func releaseStateNames() []string {
	var names []string
	for i := int32(1); ; i++ {
		full, ok := rollwavev1.ReleaseState_name[i]
		if !ok {
			return names
		}
		names = append(names, enumName(full, "RELEASE_STATE_"))
	}
}

// parseReleaseState accepts "rolled_back", "rolled-back" or "ROLLED_BACK".
func parseReleaseState(s string) (rollwavev1.ReleaseState, error) {
	key := "RELEASE_STATE_" + strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if v, ok := rollwavev1.ReleaseState_value[key]; ok && v != 0 {
		return rollwavev1.ReleaseState(v), nil
	}
	return 0, usageErrorf("invalid -state %q: must be one of %s", s, strings.Join(releaseStateNames(), ", "))
}

// phaseProgress reads "2/5": phases verified of all phases.
func phaseProgress(r *rollwavev1.Release) string {
	if len(r.GetPhases()) == 0 {
		return ""
	}
	done := 0
	for _, p := range r.GetPhases() {
		if p.GetState() == rollwavev1.PhaseState_PHASE_STATE_VERIFIED {
			done++
		}
	}
	return fmt.Sprintf("%d/%d", done, len(r.GetPhases()))
}
