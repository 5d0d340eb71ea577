package gossipbench

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("1000 2000,3000")
	if err != nil || len(got) != 3 || got[0] != 1000 || got[2] != 3000 {
		t.Fatalf("ParseSizes: %v %v", got, err)
	}
	for _, bad := range []string{"", "  ", "10x", "-5", "0"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("ParseSizes(%q) should fail", bad)
		}
	}
}

// The counter adds the lines rollwave's log adapter held back.
func TestRefuteCounter(t *testing.T) {
	h := &refuteCounter{}
	log := slog.New(h).With("component", "gossip")
	log.Warn("Refuting a suspect message (from: a1)", "source", "memberlist")
	log.Warn("Refuting a suspect message (from: a2)", "source", "memberlist", "similar_lines_suppressed", 4)
	log.Warn("Refuting a dead message (from: a3)", "source", "memberlist")
	log.Error("Failed fallback TCP ping: timeout", "source", "memberlist")
	log.Info("Refuting a suspect message (ignored: below warn)")
	if s, d, o := h.suspect.Load(), h.dead.Load(), h.other.Load(); s != 6 || d != 1 || o != 1 {
		t.Fatalf("suspect %d dead %d other %d, want 6 1 1", s, d, o)
	}
	if len(h.samples) != 1 || !strings.HasPrefix(h.samples[0], "Failed fallback") {
		t.Fatalf("samples %q", h.samples)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Run(ctx, Options{N: 0}); err == nil || !strings.Contains(err.Error(), "N 0") {
		t.Fatalf("N=0: %v", err)
	}
	if _, err := Run(ctx, Options{N: 5, Profile: "nope"}); err == nil || !strings.Contains(err.Error(), `unknown profile "nope"`) {
		t.Fatalf("bad profile: %v", err)
	}
	if err := CheckBin("/nonexistent/rollwave"); err == nil {
		t.Fatal("CheckBin should fail for a missing binary")
	}
}
