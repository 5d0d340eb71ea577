package spec

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The packages that write audit events, relative to this one.
var eventWriters = []string{"../raftfsm", "../deploy/rollout", "../deploy/dispatch", "../coordinator"}

// TestNotifyEventKindsMatchTheWriters keeps NotifyEventKinds in step with
// the code: every event kind literal the writers hold is subscribable, and
// every listed kind is written (as a literal, or as release.<state> and
// phase.<state> from the FSM's transitions).
func TestNotifyEventKindsMatchTheWriters(t *testing.T) {
	fams := strings.Join(notifyEventFamilies(), "|")
	lit := regexp.MustCompile(`"((?:` + fams + `)\.[a-z_]+)"`)
	written := map[string]bool{}
	for _, dir := range eventWriters {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
				written[m[1]] = true
			}
		}
	}
	for name, v := range rollwavev1.ReleaseState_value {
		if v != 0 {
			written["release."+strings.ToLower(strings.TrimPrefix(name, "RELEASE_STATE_"))] = true
		}
	}
	for name, v := range rollwavev1.PhaseState_value {
		if v != 0 {
			written["phase."+strings.ToLower(strings.TrimPrefix(name, "PHASE_STATE_"))] = true
		}
	}
	// SetChainState writes "chain." + the state (ACTIVE only at submit).
	for name, v := range rollwavev1.ChainState_value {
		if v != 0 && name != "CHAIN_STATE_ACTIVE" {
			written["chain."+strings.ToLower(strings.TrimPrefix(name, "CHAIN_STATE_"))] = true
		}
	}
	for k := range written {
		if !slices.Contains(NotifyEventKinds, k) {
			t.Errorf("%s is written but not in NotifyEventKinds: add it (and to docs/release-spec.md, notify.events)", k)
		}
	}
	for _, k := range NotifyEventKinds {
		if !written[k] && k != "host.reverted_isolated" {
			t.Errorf("NotifyEventKinds lists %s, which no writer writes", k)
		}
	}
}
