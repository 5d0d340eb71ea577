package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
)

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestServerCommand stands in for the lead's `server` command.
func newTestServerCommand(ran *bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:  "server",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			*ran = true
			return errors.New("boom")
		},
	}
	cmd.Flags().String("config", "", "config file")
	return cmd
}
