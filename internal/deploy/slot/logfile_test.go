package slot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotatingFileKeepsOneOld(t *testing.T) {
	p := filepath.Join(t.TempDir(), "slot.log")
	r, err := openRotating(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b", "c"} {
		if _, err := r.Write([]byte(strings.Repeat(s, 60))); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	cur, _ := os.ReadFile(p)
	old, _ := os.ReadFile(p + ".1")
	if string(cur) != strings.Repeat("c", 60) || string(old) != strings.Repeat("b", 60) {
		t.Fatalf("current %q, old %q", cur, old)
	}
	if _, err := os.Stat(p + ".2"); !os.IsNotExist(err) {
		t.Fatalf("more than one old file kept: %v", err)
	}
}
