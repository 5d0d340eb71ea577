package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenDocsCommand is `rollwave gen-docs DIR`: the man pages (section 1)
// and the bash, zsh and fish completion scripts, generated from the
// command tree itself, so they can never describe another version. The
// packages run it on the binary they ship (packaging.Build) and install
// the files; it is hidden because operators get its output from the
// package, and `rollwave completion SHELL` prints one script on demand.
func newGenDocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write the man pages and shell completion scripts into DIR",
		Hidden: true,
		Args:   exactArgs("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return WriteDocs(cmd.Root(), args[0])
		},
	}
}

// WriteDocs writes DIR/man1/*.1 (one page per command) and
// DIR/completion/{rollwave.bash,_rollwave,rollwave.fish} for root.
func WriteDocs(root *cobra.Command, dir string) error {
	man := filepath.Join(dir, "man1")
	comp := filepath.Join(dir, "completion")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	root.DisableAutoGenTag = true // reproducible pages: no generation date
	hdr := &doc.GenManHeader{Title: "ROLLWAVE", Section: "1", Source: "rollwave " + root.Version, Manual: "rollwave manual"}
	if err := doc.GenManTree(root, hdr, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for name, gen := range map[string]func(string) error{
		"rollwave.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
		"_rollwave":     root.GenZshCompletionFile,
		"rollwave.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
	} {
		if err := gen(filepath.Join(comp, name)); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}
