package monitoring

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// promtool comes with Debian's prometheus package (.ci/run installs it).
// Its absence fails the test: a skipped check would let broken rules ship.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install it with 'apt-get install -y prometheus'", err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestAlertRulesCheck(t *testing.T) {
	promtool(t, "check", "rules", "alerts.yml")
}

// promtool's unit tests feed series to the rules and expect the alerts.
func TestAlertRulesFire(t *testing.T) {
	promtool(t, "test", "rules", "alerts_test.yml")
}

var (
	metricName = regexp.MustCompile(`\brollwave_[a-z_]+`)
	// A name as the code defines it: Name: "rollwave_…" or NewDesc("rollwave_…".
	definedName = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(rollwave_[a-z_]+)"`)
)

// definedMetrics are the rollwave_* names the coordinator and the agent
// register, read from their sources.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	var files []string
	for _, dir := range []string{"../../internal/coordinator", "../../internal/agent"} {
		fs, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range definedName.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d metric names in the sources: has the way they are defined changed?", len(names))
	}
	return names
}

// undefined reports the names in text that the code does not define
// (histogram series suffixes allowed).
func undefined(defined map[string]bool, text string) []string {
	seen := map[string]bool{}
	for _, n := range metricName.FindAllString(text, -1) {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && defined[b] {
				base = b
			}
		}
		if !defined[base] {
			seen[n] = true
		}
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// The rules and the dashboard use only metrics the binaries export.
func TestExamplesUseRealMetricNames(t *testing.T) {
	defined := definedMetrics(t)
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if bad := undefined(defined, string(rules)); len(bad) > 0 {
		t.Errorf("alerts.yml uses metrics no binary exports: %v", bad)
	}
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if bad := undefined(defined, q.Expr); len(bad) > 0 {
				t.Errorf("panel %q uses metrics no binary exports: %v", p.Title, bad)
			}
		}
	}
}
