package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"
)

// GossipKeySize is the size of keys `rollwave keygen` makes: AES-256.
const GossipKeySize = 32

func newKeygenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Generate a gossip encryption key",
		Long: `Print a new random 32-byte key, base64-encoded, for encrypting the gossip
pool (the encrypt setting of servers and agents, or
"rollwave operator gossip keyring -install"). Works locally.`,
		Example: `  rollwave keygen`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, GossipKeySize)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("reading random bytes: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(key))
			return nil
		},
	}
}
