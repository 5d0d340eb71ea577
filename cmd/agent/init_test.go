package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// What package initialisation allocates is heap the agent holds (or has
// to collect) before it does anything, on every host: a regexp with a
// counted repetition compiled into a package variable cost ~100 KB each
// (docs/performance.md, "Agent footprint"). This test runs the agent built
// the way `make build` builds it with GODEBUG=inittrace=1 and holds each
// rollwave package's init, and all of it together, to a budget.
func TestAgentInitAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	const (
		// Per rollwave package. The generated protobuf package registers
		// its file descriptors at init (~170 KB) and has its own budget.
		perPackage = 32 << 10
		protoPkg   = "github.com/rollwave/rollwave/proto/rollwave/v1"
		protoInit  = 256 << 10
		// Everything the agent links, libraries included: ~0.77 MB when
		// this was written (1.6 MB before internal/spec's name patterns
		// lost their counted repetitions, 0.98 MB before the agent stopped
		// linking the release-spec validator and Masterminds/semver).
		total = 896 << 10
	)
	bin := filepath.Join(t.TempDir(), "rollwave-agent")
	build := exec.Command("go", "build", "-trimpath", "-tags", agentTags(t), "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run() // the exit status does not matter: init has run

	// init github.com/rollwave/rollwave/internal/spec @5.3 ms, 0.052 ms clock, 22768 bytes, 312 allocs
	line := regexp.MustCompile(`^init (\S+) @.* (\d+) bytes, (\d+) allocs$`)
	sum, pkgs := 0, 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pkgs++
		n, _ := strconv.Atoi(m[2])
		sum += n
		budget := perPackage
		switch {
		case m[1] == protoPkg:
			budget = protoInit
		case !strings.HasPrefix(m[1], "github.com/rollwave/rollwave/"):
			continue
		}
		if n > budget {
			t.Errorf("%s allocates %d bytes at init (budget %d): make the work lazy or cheaper (GODEBUG=inittrace=1 %s -version)", m[1], n, budget, filepath.Base(bin))
		}
	}
	if pkgs < 50 {
		t.Fatalf("read %d init lines from GODEBUG=inittrace=1; the format changed?\n%s", pkgs, stderr.String())
	}
	if sum > total {
		t.Errorf("package initialisation allocates %d bytes in all (budget %d); find the package with GODEBUG=inittrace=1 bin/rollwave-agent -version", sum, total)
	}
	t.Logf("%d packages allocate %d bytes at init", pkgs, sum)
}
