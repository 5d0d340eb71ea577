package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The agent runs on every host, so what it links is part of its footprint
// (docs/performance.md): every package linked is pages touched at start-up,
// and some imports cost far more than their own code. This test keeps out
// what the agent must not link, built the way `make build` builds it.
// agentTags returns AGENT_TAGS from the Makefile: the agent's build tags.
func agentTags(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^AGENT_TAGS := (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile has no AGENT_TAGS line")
	}
	return strings.TrimSpace(string(m[1]))
}

func TestAgentDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	tags := agentTags(t)
	out, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	forbidden := []struct{ pkg, why string }{
		// grpc's tracing runs html/template: the linker then keeps every
		// exported method of every type (~3 MiB). AGENT_TAGS has grpcnotrace.
		{"golang.org/x/net/trace", "grpc tracing (build with -tags grpcnotrace)"},
		// Coordinator-side code has no business in the agent.
		{"github.com/rollwave/rollwave/internal/coordinator", "the coordinator"},
		{"github.com/rollwave/rollwave/internal/raftfsm", "the replicated state"},
		{"github.com/rollwave/rollwave/internal/cli", "the operator CLI"},
		{"github.com/hashicorp/raft", "raft"},
		{"github.com/spf13/cobra", "the CLI framework"},
		{"github.com/goreleaser/nfpm/v2", "packaging"},
		{"net/http/pprof", "profiling endpoints"},
		// Release specs are validated by the coordinator and the CLI; the
		// agent parses only its config (internal/spec/speccore). The
		// validator's libraries cost the agent init work and resident
		// pages: Masterminds/semver alone allocated ~200 KB at init.
		{"github.com/rollwave/rollwave/internal/spec", "the release-spec validator (use internal/spec/speccore)"},
		{"github.com/Masterminds/semver/v3", "release requires constraints"},
	}
	for _, f := range forbidden {
		if deps[f.pkg] {
			t.Errorf("rollwave-agent (tags %q) links %s (%s); find the import with: go list -deps -f '{{.ImportPath}}: {{.Imports}}' -tags %q ./cmd/agent | grep %s",
				tags, f.pkg, f.why, tags, f.pkg)
		}
	}
	if t.Failed() {
		return
	}
	// Without the tag, x/net/trace is back: the test checks the Makefile's
	// tags, not an accident of the module graph.
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "golang.org/x/net/trace\n") {
		t.Log("note: grpc no longer imports golang.org/x/net/trace by default; AGENT_TAGS may be obsolete")
	}
}
