package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeArgs rewrites Go/Nomad-style single-dash long flags ("-address
// x", "-json", "-from=2026-…") to the double-dash form pflag expects, which
// would otherwise read "-address" as the shorthand cluster -a -d -d ….
//
// A token is rewritten only when it names a long flag (longer than one
// character) of the command it appears under, or of one of that command's
// ancestors. The walk follows subcommand names through args so each flag is
// looked up on the right command, and skips the value of a flag that takes
// one, so "-reason -json" keeps "-json" as the reason. Everything after "--"
// is left alone.
func normalizeArgs(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	cmd := root
	for i := 0; i < len(args); i++ {
		tok := args[i]
		switch {
		case tok == "--":
			return append(out, args[i:]...)
		case strings.HasPrefix(tok, "--"):
			out = append(out, tok)
			if name, _, hasValue := strings.Cut(tok[2:], "="); !hasValue && takesValue(cmd, name) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		case strings.HasPrefix(tok, "-") && len(tok) > 2:
			name, _, hasValue := strings.Cut(tok[1:], "=")
			if len(name) < 2 || lookupFlag(cmd, name) == nil {
				out = append(out, tok) // a shorthand (cluster) or unknown: pflag decides
				continue
			}
			out = append(out, "-"+tok)
			if !hasValue && takesValue(cmd, name) && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
		default:
			out = append(out, tok)
			if sub := findSub(cmd, tok); sub != nil {
				cmd = sub
			}
		}
	}
	return out
}

// lookupFlag finds a long flag on cmd or an ancestor's persistent flags
// without relying on cobra having merged them yet.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	// Cobra adds -help and -version only when it executes; add them now,
	// as it would, so "-help" is recognised.
	cmd.InitDefaultHelpFlag()
	cmd.Root().InitDefaultVersionFlag()
	if f := cmd.Flags().Lookup(name); f != nil {
		return f
	}
	for c := cmd; c != nil; c = c.Parent() {
		if f := c.PersistentFlags().Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// takesValue reports whether the flag consumes the next argument.
func takesValue(cmd *cobra.Command, name string) bool {
	f := lookupFlag(cmd, name)
	return f != nil && f.NoOptDefVal == ""
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}
