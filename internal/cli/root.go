// Package cli is the rollwave operator command line: every `rollwave`
// subcommand except `server`, each a thin gRPC client of a coordinator's
// OperatorService.
//
// Exit codes: 0 success, 1 runtime error, 2 usage error (unknown command
// or flag, wrong argument count, bad flag value), 3 when a -wait timed
// out, and 4-9 when the
// coordinator refused or could not serve the request, by gRPC code
// (errors.go: not found, already exists, invalid, wrong state, denied,
// unavailable).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes returned by Run.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

const (
	// DefaultAddress is the coordinator gRPC address used when neither
	// -address nor ROLLWAVE_ADDR is set.
	DefaultAddress = "127.0.0.1:7420"
	// EnvAddress names the environment variable that overrides DefaultAddress.
	EnvAddress = "ROLLWAVE_ADDR"
	// EnvActor names the environment variable that overrides the actor
	// ($USER@hostname) recorded with every write.
	EnvActor = "ROLLWAVE_ACTOR"
	// DefaultTimeout bounds each unary call.
	DefaultTimeout = 10 * time.Second
)

// app carries what every command shares: the global flags and the few
// things tests replace (the clock).
type app struct {
	address string
	timeout time.Duration
	now     func() time.Time
	tls     tlsFlags
	// token is the operator ACL token secret (-token); tokenFile names a
	// file holding it (-token-file). See tokenSecret for the environment.
	token, tokenFile string
}

// NewRootCommand builds the `rollwave` command tree with every operator
// subcommand. Callers may add more subcommands (the `server` command) with
// AddCommand before passing it to Run.
func NewRootCommand(version string) *cobra.Command {
	return newRoot(version, &app{now: time.Now})
}

func newRoot(version string, a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "rollwave",
		Short: "Roll out services across a fleet, phase by phase, with blue/green slots",
		Long: `rollwave rolls a new version of a service out across a fleet of hosts grouped
into cells: a canary first, then the least risky cells in growing, baked phases,
with every host able to switch back to its old slot in seconds.

Every command except "server" talks gRPC to a coordinator, chosen with
-address or ROLLWAVE_ADDR (default ` + DefaultAddress + `).

Flags take one dash or two: -address and --address are the same flag.`,
		Version:       version,
		SilenceErrors: true, // Run prints errors, once.
		SilenceUsage:  true, // usage is shown for usage errors only.
	}
	makeGroup(root)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })

	pf := root.PersistentFlags()
	pf.StringVar(&a.address, "address", DefaultAddress,
		"coordinator gRPC address (env "+EnvAddress+")")
	pf.DurationVar(&a.timeout, "timeout", DefaultTimeout, "deadline for each request (streams such as snapshots and -watch have none)")
	a.tls.register(pf)
	pf.StringVar(&a.token, "token", "", "operator ACL token secret, sent with every request; visible in ps: prefer -token-file or env "+EnvToken)
	pf.StringVar(&a.tokenFile, "token-file", "", "file holding the operator ACL token secret (env "+EnvTokenFile+")")

	root.AddCommand(
		newMembersCommand(a),
		newStatusCommand(a),
		newOperatorCommand(a),
		newHostsCommand(a),
		newLogsCommand(a),
		newCellsCommand(a),
		newReleaseCommand(a),
		newChainCommand(a),
		newFreezeCommand(a),
		newNotifyCommand(a),
		newReportCommand(a),
		newACLCommand(a),
		newTLSCommand(),
		newKeygenCommand(),
		newGenDocsCommand(),
	)
	addGossipKeyringCommand(root, a)
	return root
}

// Run executes root with args (without the program name), writing to stdout
// and stderr, and returns the process exit code. Errors are printed once as
// "Error: <message>"; usage errors are followed by the command's usage.
func Run(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(normalizeArgs(root, args))

	// Cobra reports parse and argument errors exactly like errors from a
	// command's RunE. To tell usage errors from runtime ones, every RunE
	// (including ones added after NewRootCommand) records that it was reached:
	// anything failing before that is a usage error.
	st := &runState{}
	markRuns(root)
	cmd, err := root.ExecuteContextC(context.WithValue(context.Background(), runStateKey{}, st))
	if err == nil {
		return ExitOK
	}
	if cmd == nil {
		cmd = root
	}
	var ue *usageError
	if errors.As(err, &ue) || !st.reached {
		fmt.Fprintf(stderr, "Error: %s\n\n", err)
		fmt.Fprint(stderr, cmd.UsageString())
		return ExitUsage
	}
	fmt.Fprintf(stderr, "Error: %s\n", describeError(err, st.address))
	return exitCode(err)
}

// usageError marks an error as the operator's mistake in calling the
// command (exit 2). Commands return it for flag values they validate
// themselves.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type runStateKey struct{}

// runState is what one Run learns while the command executes.
type runState struct {
	reached bool   // the command's RunE started: later errors are runtime errors
	address string // the coordinator dialled, for error messages
}

func stateOf(cmd *cobra.Command) *runState {
	if ctx := cmd.Context(); ctx != nil {
		if st, ok := ctx.Value(runStateKey{}).(*runState); ok {
			return st
		}
	}
	return nil
}

// markedAnnotation guards markRuns against wrapping a command twice when the
// same tree is run more than once.
const markedAnnotation = "rollwave.cli/marked"

func markRuns(c *cobra.Command) {
	if c.Annotations[markedAnnotation] == "" {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[markedAnnotation] = "1"
		switch {
		case c.RunE != nil:
			inner := c.RunE
			c.RunE = func(cmd *cobra.Command, args []string) error {
				markReached(cmd)
				return inner(cmd, args)
			}
		case c.Run != nil:
			inner := c.Run
			c.Run = func(cmd *cobra.Command, args []string) {
				markReached(cmd)
				inner(cmd, args)
			}
		}
	}
	for _, sub := range c.Commands() {
		markRuns(sub)
	}
}

func markReached(cmd *cobra.Command) {
	if st := stateOf(cmd); st != nil {
		st.reached = true
	}
}

// makeGroup turns a command that only holds subcommands into one that prints
// its help when called bare and rejects unknown subcommands as a usage error
// (cobra would otherwise print help and exit 0 for "rollwave release bogus").
func makeGroup(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply itself
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageErrorf("%s", msg)
	}
	return c
}

// exactArgs is cobra.ExactArgs naming the expected arguments, as a usage error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		if len(names) == 0 {
			return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
		}
		return usageErrorf("%s needs %d argument(s): %s; got %d",
			cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
	}
}

// resolvedAddress is -address when given, else ROLLWAVE_ADDR, else the default.
func (a *app) resolvedAddress(cmd *cobra.Command) string {
	if f := cmd.Root().PersistentFlags().Lookup("address"); f != nil && f.Changed {
		return a.address
	}
	if env := strings.TrimSpace(os.Getenv(EnvAddress)); env != "" {
		return env
	}
	return a.address
}

// actor names who asks for a write: ROLLWAVE_ACTOR, else $USER@hostname.
func actor() string {
	if v := strings.TrimSpace(os.Getenv(EnvActor)); v != "" {
		return v
	}
	user := os.Getenv("USER")
	if user == "" {
		if u, err := osuser.Current(); err == nil && u.Username != "" {
			user = u.Username
		} else {
			user = "unknown"
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return user + "@" + host
}
