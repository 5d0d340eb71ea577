package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// KeyringClient manages the gossip encryption keyring through a
// coordinator. The coordinator applies each change to its own keyring and
// gossips it to every member (see internal/gossip, Pool.InstallKey and
// friends); the RPC that carries these calls is wired by the coordinator
// side (SetKeyringDialer).
type KeyringClient interface {
	// ListKeys returns the keyring as the answering coordinator holds it.
	ListKeys(ctx context.Context) (*KeyringList, error)
	// InstallKey adds key (base64) to every member's keyring.
	InstallKey(ctx context.Context, key string) error
	// UseKey makes key, already installed, the one members encrypt with.
	UseKey(ctx context.Context, key string) error
	// RemoveKey removes key from every member's keyring; the primary key
	// cannot be removed.
	RemoveKey(ctx context.Context, key string) error
}

// KeyringList is a keyring as one member holds it.
type KeyringList struct {
	// Keys are base64-encoded, the primary first.
	Keys []string `json:"keys"`
	// Primary is the key outgoing messages are encrypted with.
	Primary string `json:"primary"`
	// Version counts keyring changes (a Lamport clock over the pool).
	Version uint64 `json:"version"`
	// Node is the member that answered.
	Node string `json:"node,omitempty"`
}

// KeyringDialer opens a KeyringClient to the coordinator at address; the
// returned function closes it.
type KeyringDialer func(ctx context.Context, address string) (KeyringClient, func(), error)

// keyringDialers maps each keyring command to its dialer holder, so that
// SetKeyringDialer can reach the one in a given command tree.
var keyringDialers sync.Map // *cobra.Command -> *keyringDialerHolder

type keyringDialerHolder struct {
	mu   sync.Mutex
	dial KeyringDialer
}

func (h *keyringDialerHolder) get() KeyringDialer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dial
}

// SetKeyringDialer makes `rollwave operator gossip keyring` in root use d.
// It fails if root has no such command.
func SetKeyringDialer(root *cobra.Command, d KeyringDialer) error {
	if d == nil {
		return errors.New("cli: nil KeyringDialer")
	}
	c, _, err := root.Find([]string{"operator", "gossip", "keyring"})
	if err != nil || c.Name() != "keyring" {
		return fmt.Errorf("cli: no operator gossip keyring command in %q", root.Name())
	}
	h, ok := keyringDialers.Load(c)
	if !ok {
		return fmt.Errorf("cli: %q is not the keyring command", c.CommandPath())
	}
	holder := h.(*keyringDialerHolder)
	holder.mu.Lock()
	holder.dial = d
	holder.mu.Unlock()
	return nil
}

// addGossipKeyringCommand puts `gossip keyring` under root's operator
// command.
func addGossipKeyringCommand(root *cobra.Command, a *app) {
	op, _, err := root.Find([]string{"operator"})
	if err != nil || op == root {
		return
	}
	gossip := makeGroup(&cobra.Command{
		Use:   "gossip",
		Short: "Manage the gossip pool's encryption keys",
	})
	gossip.AddCommand(newKeyringCommand(a))
	op.AddCommand(gossip)
}

func newKeyringCommand(a *app) *cobra.Command {
	var (
		install, use, remove string
		list, asJSON         bool
	)
	holder := &keyringDialerHolder{dial: a.grpcKeyringDialer}
	cmd := &cobra.Command{
		Use:   "keyring (-install KEY | -use KEY | -remove KEY | -list)",
		Short: "Rotate the gossip encryption key",
		Long: `Manage the keys the gossip pool is encrypted with. A member decrypts with
any key in its keyring and encrypts with the primary one. Rotate a key in
three steps, checking -list on several coordinators between them:

  1. -install NEW   every member learns the new key
  2. -use NEW       every member encrypts with it
  3. -remove OLD    the old key is dropped

Changes are gossiped to every member (best effort, then repaired by the
periodic state sync); a member that was down catches up when it rejoins,
provided it still has a key the pool uses. Keys are base64 (rollwave keygen).

A key given as @FILE is read from FILE (@/dev/stdin reads standard input):
a key written on the command line is visible to every local user in ps.`,
		Example: `  rollwave operator gossip keyring -list
  rollwave keygen > /etc/rollwave/gossip-new.key
  rollwave operator gossip keyring -install @/etc/rollwave/gossip-new.key
  rollwave operator gossip keyring -use @/etc/rollwave/gossip-new.key
  rollwave operator gossip keyring -remove @/etc/rollwave/gossip-old.key`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, set := range []bool{install != "", use != "", remove != "", list} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usageErrorf("give exactly one of -install, -use, -remove or -list")
			}
			if asJSON && !list {
				return usageErrorf("-json goes with -list")
			}
			for _, k := range []struct {
				flag string
				val  *string
			}{{"install", &install}, {"use", &use}, {"remove", &remove}} {
				if file, ok := strings.CutPrefix(*k.val, "@"); ok {
					// Base64 never starts with '@': this is a file.
					key, err := spec.ReadSecretFile(file)
					if err != nil {
						return fmt.Errorf("-%s: %w", k.flag, err)
					}
					*k.val = key
				}
				if *k.val != "" {
					if err := checkGossipKey(*k.val); err != nil {
						return usageErrorf("invalid -%s key: %v", k.flag, err)
					}
				}
			}
			if a.timeout <= 0 {
				return usageErrorf("invalid -timeout %s: must be positive", a.timeout)
			}
			addr := a.resolvedAddress(cmd)
			if st := stateOf(cmd); st != nil {
				st.address = addr
			}
			ctx, cancel := a.unary(cmd)
			defer cancel()
			client, done, err := holder.get()(ctx, addr)
			if err != nil {
				return err
			}
			defer done()
			out := cmd.OutOrStdout()
			switch {
			case install != "":
				if err := client.InstallKey(ctx, install); err != nil {
					return fmt.Errorf("installing key: %w", err)
				}
				fmt.Fprintln(out, "==> Installed key; gossiping it to every member")
			case use != "":
				if err := client.UseKey(ctx, use); err != nil {
					return fmt.Errorf("changing primary key: %w", err)
				}
				fmt.Fprintln(out, "==> Changed primary key; gossiping it to every member")
			case remove != "":
				if err := client.RemoveKey(ctx, remove); err != nil {
					return fmt.Errorf("removing key: %w", err)
				}
				fmt.Fprintln(out, "==> Removed key; gossiping it to every member")
			default:
				l, err := client.ListKeys(ctx)
				if err != nil {
					return fmt.Errorf("listing keys: %w", err)
				}
				if asJSON {
					b, err := json.MarshalIndent(l, "", "  ")
					if err != nil {
						return err
					}
					fmt.Fprintln(out, string(b))
					return nil
				}
				if l.Node != "" {
					fmt.Fprintf(out, "Keyring of %s (version %d):\n", l.Node, l.Version)
				} else {
					fmt.Fprintf(out, "Keyring (version %d):\n", l.Version)
				}
				t := newTable(out, "KEY", "PRIMARY")
				for _, k := range l.Keys {
					t.row(k, yesNo(k == l.Primary))
				}
				return t.flush()
			}
			return nil
		},
	}
	keyringDialers.Store(cmd, holder)
	f := cmd.Flags()
	f.StringVar(&install, "install", "", "add KEY (or @FILE holding it) to every member's keyring")
	f.StringVar(&use, "use", "", "make the installed KEY (or @FILE) the primary (encrypting) key")
	f.StringVar(&remove, "remove", "", "remove KEY (or @FILE) from every member's keyring")
	f.BoolVar(&list, "list", false, "list the keys")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// checkGossipKey accepts base64 of 16, 24 or 32 bytes (AES-128/192/256).
func checkGossipKey(s string) error {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return errors.New("not base64")
	}
	switch len(b) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%d bytes, want 16, 24 or 32", len(b))
}

// grpcKeyringDialer reaches a coordinator's GossipKeyring RPC with the
// CLI's usual connection settings (TLS, token).
func (a *app) grpcKeyringDialer(_ context.Context, addr string) (KeyringClient, func(), error) {
	conn, err := a.dial(addr)
	if err != nil {
		return nil, nil, err
	}
	return grpcKeyring{rollwavev1.NewOperatorServiceClient(conn)}, func() { _ = conn.Close() }, nil
}

type grpcKeyring struct {
	c rollwavev1.OperatorServiceClient
}

func (g grpcKeyring) call(ctx context.Context, op, key string) (*rollwavev1.GossipKeyringResponse, error) {
	return g.c.GossipKeyring(ctx, &rollwavev1.GossipKeyringRequest{Op: op, Key: key})
}

func (g grpcKeyring) ListKeys(ctx context.Context) (*KeyringList, error) {
	r, err := g.call(ctx, "list", "")
	if err != nil {
		return nil, err
	}
	return &KeyringList{Keys: r.GetKeys(), Primary: r.GetPrimary(), Version: r.GetVersion(), Node: r.GetNode()}, nil
}

func (g grpcKeyring) InstallKey(ctx context.Context, key string) error {
	_, err := g.call(ctx, "install", key)
	return err
}

func (g grpcKeyring) UseKey(ctx context.Context, key string) error {
	_, err := g.call(ctx, "use", key)
	return err
}

func (g grpcKeyring) RemoveKey(ctx context.Context, key string) error {
	_, err := g.call(ctx, "remove", key)
	return err
}
