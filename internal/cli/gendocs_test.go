package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// gen-docs writes one man page per visible command and the three
// completion scripts, all from the command tree the binary runs.
func TestGenDocs(t *testing.T) {
	dir := t.TempDir()
	root := NewRootCommand("1.2.3")
	var stdout, stderr strings.Builder
	if code := Run(root, []string{"gen-docs", dir}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("gen-docs exited %d: %s", code, stderr.String())
	}
	var walk func(c *cobra.Command)
	pages := 0
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != c.Root() {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		b, err := os.ReadFile(filepath.Join(dir, "man1", name))
		if err != nil {
			t.Errorf("no man page for %q: %v", c.CommandPath(), err)
		} else if !strings.Contains(string(b), c.Short) || !strings.Contains(string(b), "rollwave 1.2.3") {
			t.Errorf("%s does not carry the command's summary %q and version", name, c.Short)
		}
		pages++
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand("1.2.3"))
	if pages < 20 {
		t.Errorf("only %d man pages", pages)
	}
	if _, err := os.Stat(filepath.Join(dir, "man1", "rollwave-gen-docs.1")); err == nil {
		t.Error("the hidden gen-docs command got a man page")
	}
	for _, f := range []string{"rollwave.bash", "_rollwave", "rollwave.fish"} {
		b, err := os.ReadFile(filepath.Join(dir, "completion", f))
		if err != nil || !strings.Contains(string(b), "rollwave") || len(b) < 1000 {
			t.Errorf("completion/%s: %v (%d bytes)", f, err, len(b))
		}
	}
	// A usage mistake is exit 2 and writes nothing.
	if code := Run(NewRootCommand("1.2.3"), []string{"gen-docs"}, &stdout, &stderr); code != ExitUsage {
		t.Errorf("gen-docs without DIR exited %d, want %d", code, ExitUsage)
	}
}
