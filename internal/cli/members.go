package cli

import (
	"sort"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newMembersCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List coordinators and agents in the gossip pool",
		Long: `List every node the coordinator sees in the gossip pool: coordinators
("server") and agents, with their liveness, cell and region. The leader
column marks the raft leader among the servers.`,
		Example: `  rollwave members
  rollwave members -json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.Members, &rollwavev1.MembersRequest{})
			if err != nil {
				return err
			}
			members := resp.GetMembers()
			sort.SliceStable(members, func(i, j int) bool { return members[i].GetName() < members[j].GetName() })
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "members", members)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "ADDRESS", "ROLE", "STATUS", "CELL", "REGION", "LEADER", "VERSION")
			for _, m := range members {
				t.row(m.GetName(), m.GetAddress(), m.GetRole(), m.GetStatus(), m.GetCell(), m.GetRegion(),
					yesNo(m.GetLeader()), m.GetVersion())
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newStatusCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the coordinator's node, raft state and leader",
		Long: `Show the state of the coordinator at -address: its node id, raft state
(leader, follower, candidate), the leader it follows and its log indexes.`,
		Example: `  rollwave status
  rollwave status -address 10.0.0.2:7420`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.Status, &rollwavev1.StatusRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), resp)
			}
			leader := resp.GetLeaderId()
			if leader == "" {
				leader = "none (no leader elected)"
			} else if resp.GetLeaderAddress() != "" {
				leader += " (" + resp.GetLeaderAddress() + ")"
			}
			return keyValues(cmd.OutOrStdout(),
				"Node", resp.GetNodeId(),
				"Raft state", resp.GetRaftState(),
				"Leader", leader,
				"Applied index", uitoa(resp.GetAppliedIndex()),
				"Last index", uitoa(resp.GetLastIndex()),
				"Version", resp.GetVersion(),
			)
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}
