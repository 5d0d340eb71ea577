package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// aclRoles are the roles a token may have, least privileged first.
var aclRoles = []string{"read", "deploy", "admin"}

func newACLCommand(a *app) *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "acl",
		Short: "Bootstrap operator ACLs and manage tokens",
		Long: `With ACLs enabled on the servers (acl { enabled = true } or -acl-enabled),
every request but "status" needs a token, passed with -token-file FILE,
ROLLWAVE_TOKEN_FILE, ROLLWAVE_TOKEN or -token (which every local user can
see in ps).
A token's role says what it may do:

  read    look: status, members, hosts, cells, releases, events, plans, freezes
  deploy  read, plus submit/start/pause/resume/approve/abort/rollback/promote
          releases, set/delete cells, add/remove freeze windows
  admin   everything: raft peers, snapshots, the global freeze, tokens

The token's name is recorded as the actor of everything done with it. Only a
hash of each secret is stored; a secret is shown once, when it is made.`,
	})
	token := makeGroup(&cobra.Command{
		Use:   "token",
		Short: "Create, list and delete ACL tokens",
	})
	token.AddCommand(newACLTokenCreateCommand(a), newACLTokenListCommand(a), newACLTokenDeleteCommand(a))
	cmd.AddCommand(newACLBootstrapCommand(a), token)
	return cmd
}

func newACLBootstrapCommand(a *app) *cobra.Command {
	var (
		name   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "bootstrap [-name N]",
		Short: "Create the first admin token (once per cluster)",
		Long: `Create the cluster's first token, with role admin, and print its secret.
This works once per cluster, without a token; afterwards it is refused.
Store the secret safely: it is never shown again. Resetting the bootstrap
needs a snapshot restore (see docs/security.md).`,
		Example: `  rollwave acl bootstrap
  ROLLWAVE_TOKEN=<secret> rollwave acl token create -name alice -role deploy`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ACLBootstrap, &rollwavev1.ACLBootstrapRequest{Name: strings.TrimSpace(name)})
			if err != nil {
				return err
			}
			return printSecret(cmd, resp, asJSON, "ACL bootstrap complete.")
		},
	}
	cmd.Flags().StringVar(&name, "name", "bootstrap", "name of the bootstrap token (recorded as the actor of what it does)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func newACLTokenCreateCommand(a *app) *cobra.Command {
	var (
		name, role string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "create -name N -role read|deploy|admin",
		Short: "Create a token and print its secret (needs an admin token)",
		Example: `  rollwave acl token create -name ci -role read
  rollwave acl token create -name alice -role deploy`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			name = strings.TrimSpace(name)
			if name == "" {
				return usageErrorf("-name is required: it is recorded as the actor of what the token does")
			}
			if !slices.Contains(aclRoles, role) {
				return usageErrorf("invalid -role %q: must be one of %s", role, strings.Join(aclRoles, ", "))
			}
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ACLTokenCreate, &rollwavev1.ACLTokenCreateRequest{Name: name, Role: role})
			if err != nil {
				return err
			}
			return printSecret(cmd, resp, asJSON, "Created token.")
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "token name, unique (required)")
	cmd.Flags().StringVar(&role, "role", "", "read, deploy or admin (required)")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// printSecret shows a new token and its secret, with the one warning that
// matters: the secret is not shown again.
func printSecret(cmd *cobra.Command, resp *rollwavev1.ACLTokenSecretResponse, asJSON bool, title string) error {
	if asJSON {
		if err := writeJSON(cmd.OutOrStdout(), resp); err != nil {
			return err
		}
	} else {
		t := resp.GetToken()
		w := cmd.OutOrStdout()
		fmt.Fprintln(w, title)
		if err := keyValues(w, "Accessor", t.GetAccessorId(), "Secret", resp.GetSecret(), "Name", t.GetName(),
			"Role", t.GetRole(), "Created", timestamp(t.GetCreatedUnixNano()), "Created by", t.GetCreatedBy()); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(cmd.ErrOrStderr(), "\nWARNING: store the secret now (a secrets manager, not a shell history); it is shown only once.\n"+
		"Use it with -token-file, "+EnvTokenFile+" or "+EnvToken+".")
	return err
}

func newACLTokenListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens (admins see all, others their own); never shows secrets",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ACLTokenList, &rollwavev1.ACLTokenListRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "tokens", resp.GetTokens())
			}
			return tokenTable(cmd.OutOrStdout(), resp.GetTokens())
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func tokenTable(w io.Writer, tokens []*rollwavev1.ACLTokenInfo) error {
	t := newTable(w, "ACCESSOR", "NAME", "ROLE", "CREATED", "CREATED BY")
	for _, tok := range tokens {
		t.row(tok.GetAccessorId(), tok.GetName(), tok.GetRole(), timestamp(tok.GetCreatedUnixNano()), tok.GetCreatedBy())
	}
	return t.flush()
}

func newACLTokenDeleteCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ACCESSOR",
		Short:   "Delete a token: it stops working at once (needs an admin token)",
		Example: `  rollwave acl token delete 0ad3bfda-a54e-aebc-c2af-8f596225bc35`,
		Args:    exactArgs("ACCESSOR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			accessor := strings.TrimSpace(args[0])
			if accessor == "" {
				return usageErrorf("accessor must not be empty; see 'rollwave acl token list'")
			}
			if _, err := invoke(a, cmd, rollwavev1.OperatorServiceClient.ACLTokenDelete, &rollwavev1.ACLTokenDeleteRequest{AccessorId: accessor}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Deleted token %s\n", accessor)
			return err
		},
	}
}
