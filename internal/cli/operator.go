package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func newOperatorCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "operator",
		Short: "Cluster maintenance: raft peers and snapshots",
		Long:  `Commands for operating the coordinator cluster itself: inspect and change raft membership, save and restore snapshots of the replicated state.`,
	})
	raft := makeGroup(&cobra.Command{
		Use:   "raft",
		Short: "Inspect and change the raft peer set",
	})
	raft.AddCommand(newRaftListPeersCommand(a), newRaftRemovePeerCommand(a))
	snapshot := makeGroup(&cobra.Command{
		Use:   "snapshot",
		Short: "Save and restore snapshots of the replicated state",
	})
	snapshot.AddCommand(newSnapshotSaveCommand(a), newSnapshotRestoreCommand(a))
	cmd.AddCommand(raft, snapshot)
	return cmd
}

func newRaftListPeersCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list-peers",
		Short: "List the raft peers",
		Long:  `List the coordinators in the raft configuration with their suffrage (voter, nonvoter, staging) and which one leads.`,
		Example: `  rollwave operator raft list-peers
  rollwave operator raft list-peers -json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.RaftPeers, &rollwavev1.RaftPeersRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "peers", resp.GetPeers())
			}
			t := newTable(cmd.OutOrStdout(), "ID", "ADDRESS", "SUFFRAGE", "LEADER")
			for _, p := range resp.GetPeers() {
				t.row(p.GetId(), p.GetAddress(), p.GetSuffrage(), yesNo(p.GetLeader()))
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newRaftRemovePeerCommand(a *app) *cobra.Command {
	var id, peerAddress string
	cmd := &cobra.Command{
		Use:   "remove-peer (-id ID | -peer-address ADDR)",
		Short: "Remove a dead coordinator from the raft configuration",
		Long: `Remove a coordinator from the raft configuration, by raft server id or by
raft address. Use it for a server that is gone for good; a server that is
merely restarting rejoins by itself.

The peer's address is -peer-address: -address, as everywhere, names the
coordinator this command talks to.`,
		Example: `  rollwave operator raft remove-peer -id coord-3
  rollwave operator raft remove-peer -peer-address 10.0.0.3:7421`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (id == "") == (peerAddress == "") {
				return usageErrorf("give exactly one of -id or -peer-address")
			}
			if _, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.RemovePeer, &rollwavev1.RemovePeerRequest{Id: id, Address: peerAddress}); err != nil {
				return err
			}
			who := id
			if who == "" {
				who = peerAddress
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Removed peer %s\n", who)
			return err
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "raft server id of the peer to remove")
	// Not -address: that is the global flag choosing the coordinator, and a
	// shadowing local flag would silently take "rollwave -address X operator
	// raft remove-peer" as the peer to remove (Nomad names it -peer-address too).
	cmd.Flags().StringVar(&peerAddress, "peer-address", "", "raft address of the peer to remove")
	return cmd
}
