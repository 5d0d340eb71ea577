package spec

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// parsers runs a source through each parser that reads files from
// operators or the network: release specs and both config files share
// the decoder and so its limits.
var parsers = []struct {
	name  string
	parse func(file string, src []byte) error
}{
	{"release", func(f string, s []byte) error { _, err := ParseRelease(f, s); return err }},
	{"server config", func(f string, s []byte) error { _, err := ParseServerConfig(f, s); return err }},
	{"agent config", func(f string, s []byte) error { _, err := speccore.ParseAgentConfig(f, s); return err }},
}

// wantLimit asserts that err is a Diagnostics whose first entry is at
// file:line:column and says want.
func wantLimit(t *testing.T, err error, file string, line, col int, want string) {
	t.Helper()
	var ds speccore.Diagnostics
	if !errors.As(err, &ds) || len(ds) == 0 {
		t.Fatalf("want a Diagnostics saying %q, got %T %v", want, err, err)
	}
	d := ds[0]
	if d.File != file || d.Line != line || d.Column != col {
		t.Fatalf("want the problem at %s:%d:%d, got %s", file, line, col, d.Error())
	}
	if !strings.Contains(d.Message, want) {
		t.Fatalf("want a message saying %q, got %s", want, d.Error())
	}
	if len(ds) != 1 {
		t.Fatalf("a refused file must not be parsed further, got %d diagnostics:\n%v", len(ds), err)
	}
}

// The issue's inputs: on the old code each one ended the process with
// "fatal error: stack overflow", which no recover() catches. Each now
// gets one clear error from every parser.
func TestSecurityDeepNestingIssueInputs(t *testing.T) {
	tooBig := fmt.Sprintf("over the limit of %d bytes", speccore.MaxSourceBytes)
	cases := []struct {
		name, file, src string
	}{
		// 200,000 '[' in JSON.
		{"json brackets", "deep.json", strings.Repeat("[", 200_000)},
		// 100,000 '(' in HCL, inside a release as an attacker sends it.
		{"hcl parens", "deep.hcl", `release "x" { app = ` + strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000) + " }"},
		// 400 KB of nested objects.
		{"json objects", "deep.json", strings.Repeat(`{"a":`, 80_000)},
	}
	for _, c := range cases {
		for _, p := range parsers {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				wantLimit(t, p.parse(c.file, []byte(c.src)), c.file, 1, 1, tooBig)
			})
		}
	}
}

// Nesting under the size limit is refused at the opening that goes one
// level too deep, whatever does the nesting: the pre-scan knows strings,
// comments, heredocs and template directives as the parser does.
func TestSecurityDeepNesting(t *testing.T) {
	deep := speccore.MaxNestingDepth + 1
	limit := fmt.Sprintf("nesting is deeper than %d levels", speccore.MaxNestingDepth)
	// at is the column of the opening that exceeds the limit when the
	// nested part starts at column start and each level takes width
	// characters.
	at := func(start, width int) int { return start + (deep-1)*width }
	cases := []struct {
		name, file, src string
		line, col       int
	}{
		{"json brackets", "n.json", strings.Repeat("[", 50_000), 1, deep},
		{"json objects", "n.json", strings.Repeat(`{"a":`, 10_000), 1, at(1, 5)},
		// Brackets inside JSON strings are text.
		{"json brackets after strings", "n.json", `{"x": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",` + "\n" + ` "y": ` + strings.Repeat("[", 40_000), 2, at(7, 1) - 1},
		{"hcl parens", "n.hcl", "a = " + strings.Repeat("(", 50_000), 1, at(5, 1)},
		{"hcl tuples", "n.hcl", "a = " + strings.Repeat("[", 50_000), 1, at(5, 1)},
		{"hcl objects", "n.hcl", "a = " + strings.Repeat("{a=", 10_000), 1, at(5, 3)},
		{"hcl blocks", "n.hcl", strings.Repeat("b {\n", 10_000), deep, 3},
		// Each quoted string inside an interpolation is two levels: the
		// quote and the ${; the 17th quote is one too many.
		{"hcl nested templates", "n.hcl", "a = " + strings.Repeat(`"${`, 10_000), 1, 5 + (deep-1)/2*3},
		// An %{if} is a level until its %{endif}; the quote and the %{
		// of the directive being read are one each.
		{"hcl template ifs", "n.hcl", `a = "` + strings.Repeat("%{if true}", 5_000) + `"`, 1, 6 + (deep-3)*10},
		{"hcl heredoc ifs", "n.hcl", "a = <<EOT\n" + strings.Repeat("%{if true}\n", 5_000) + "EOT\n", deep - 1, 1},
		{"hcl unary minus", "n.hcl", "a = " + strings.Repeat("-", 50_000) + "1", 1, at(5, 1)},
		{"hcl unary not", "n.hcl", "a = " + strings.Repeat("!", 50_000) + "true", 1, at(5, 1)},
		// Brackets in comments and strings are text.
		{"hcl after comments", "n.hcl", "# " + strings.Repeat("(", 100) + "\n/* " + strings.Repeat("[", 100) + " */ a = \"" + strings.Repeat("{", 100) + "\"\nb = " + strings.Repeat("[", 1000), 3, at(5, 1)},
	}
	for _, c := range cases {
		if len(c.src) > speccore.MaxSourceBytes {
			t.Fatalf("%s: input of %d bytes would hit the size limit first", c.name, len(c.src))
		}
		for _, p := range parsers {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				wantLimit(t, p.parse(c.file, []byte(c.src)), c.file, c.line, c.col, limit)
			})
		}
	}
}

// Nesting up to the limit parses: the limit refuses attacks, not files.
func TestSecurityDeepNestingAtLimit(t *testing.T) {
	// The attribute's own '[' ... counts: MaxNestingDepth levels in all.
	list := strings.Repeat("[", speccore.MaxNestingDepth) + strings.Repeat("]", speccore.MaxNestingDepth)
	src := `release "x" { app = ` + list + " }"
	err := func() error { _, err := ParseRelease("ok.hcl", []byte(src)); return err }()
	// One level for the block's brace: this is one too many...
	if err == nil || !strings.Contains(err.Error(), "nesting is deeper") {
		t.Fatalf("want the limit hit one level over, got %v", err)
	}
	// ...and one less parses (and fails only on what the spec says).
	list = strings.Repeat("[", speccore.MaxNestingDepth-1) + strings.Repeat("]", speccore.MaxNestingDepth-1)
	_, err = ParseRelease("ok.hcl", []byte(`release "x" { app = `+list+" }"))
	if err == nil || strings.Contains(err.Error(), "nesting") || !strings.Contains(err.Error(), "release.app: expected a string, got list") {
		t.Fatalf("want ordinary findings at the limit, got %v", err)
	}
}

// Inputs that cost far more to evaluate than their size: each is refused
// before it is evaluated, and no parse of any input up to the size limit
// allocates more than a bounded amount. On the old code the nested for
// expressions asked for tens of millions of values (gigabytes), the long
// number kept a core busy for minutes formatting its error, and the
// operator chains took seconds and hundreds of MB.
func TestSecuritySpecMemory(t *testing.T) {
	list := "[" + strings.Repeat("1,", 300) + "1]"
	near := speccore.MaxSourceBytes - 100
	cases := []struct {
		name, file, src string
		want            string // "" for any error not about limits
	}{
		{"nested for expressions", "m.hcl",
			`release "x" { app = [for a in ` + list + `: [for b in ` + list + `: [for c in ` + list + `: "xxxxxxxx"]]] }`,
			"release.app: for expressions and %{for} directives are not supported"},
		{"nested template for directives", "m.hcl",
			`release "x" { app = "%{for a in ` + list + `}%{for b in ` + list + `}%{for c in ` + list + `}xxxxxxxx%{endfor}%{endfor}%{endfor}" }`,
			"release.app: for expressions and %{for} directives are not supported"},
		{"for in an object", "m.hcl",
			"release \"x\" {\n  unit {\n    environment = {for k in " + list + ": k => k}\n  }\n}",
			"release.unit.environment: for expressions"},
		{"huge exponent", "m.hcl", `release "x" { app = 1e100000000 }`, "number 1e100000000 is out of range"},
		{"tiny exponent", "m.hcl", `release "x" { app = 1e-100000000 }`, "number 1e-100000000 is out of range"},
		{"huge exponent json", "m.json", `{"release": {"x": {"app": 1e100000000}}}`, "number 1e100000000 is out of range"},
		{"long number", "m.hcl", `release "x" { app = 1` + strings.Repeat("0", 300) + ` }`, "characters long"},
		{"operator chain", "m.hcl", `release "x" { app = ` + strings.Repeat("1+", near/2) + "1 }", fmt.Sprintf("more than %d operators", speccore.MaxOperators)},
		{"index chain", "m.hcl", `release "x" { app = [1]` + strings.Repeat("[0]", near/3) + " }", fmt.Sprintf("more than %d operators", speccore.MaxOperators)},
		{"attribute chain", "m.hcl", `release "x" { app = {a=1}` + strings.Repeat(".a", near/2) + " }", fmt.Sprintf("more than %d operators", speccore.MaxOperators)},
		{"conditional chain", "m.hcl", `release "x" { app = ` + strings.Repeat("true ? 1 : ", near/11) + "1 }", fmt.Sprintf("more than %d operators", speccore.MaxOperators)},
		// The worst inputs that are within every limit: as many values
		// as fit.
		{"wide list", "m.hcl", `release "x" { app = [` + strings.Repeat("1,", near/2) + "1] }", ""},
		{"wide object", "m.hcl", `release "x" { unit { environment = {` + strings.Repeat("a=1,", near/4) + "} } }", ""},
		{"wide json list", "m.json", `{"release": {"x": {"app": [` + strings.Repeat("1,", near/2) + "1]}}}", ""},
		{"many strings", "m.hcl", `release "x" { app = [` + strings.Repeat(`"${"a"}",`, near/9) + "1] }", ""},
	}
	// Generous: the worst inputs allocate about 90 MB in total, almost
	// all of it garbage as soon as it is made.
	const maxAlloc = 256 << 20
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.src) > speccore.MaxSourceBytes {
				t.Fatalf("input of %d bytes would hit the size limit first", len(c.src))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := ParseRelease(c.file, []byte(c.src))
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes: allocated %d MB in %s", len(c.src), alloc>>20, time.Since(start).Round(time.Millisecond))
			if err == nil {
				t.Fatal("want an error")
			}
			checkDiagnostics(t, err, c.file)
			if c.want != "" && !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want %q, got:\n%v", c.want, err)
			}
			if alloc > maxAlloc {
				t.Fatalf("parsing %d bytes allocated %d MB, over %d MB", len(c.src), alloc>>20, maxAlloc>>20)
			}
		})
	}
}

// Numbers a spec can hold still format in error messages; ones beyond
// float64's range (reachable by arithmetic within the operator limit) are
// described without writing out their digits.
func TestSecurityNumberText(t *testing.T) {
	src := `release "x" { app = ` + strings.Repeat("1e300*", 200) + "1 }"
	start := time.Now()
	_, err := ParseRelease("n.hcl", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "release.app: expected a string, got number above 1.8e308") {
		t.Fatalf("want the number described without its digits, got %v", err)
	}
	t.Logf("took %s", time.Since(start))
	_, err = ParseRelease("n.hcl", []byte("release \"x\" {\n  slots {\n    blue_port = 1.5\n  }\n}"))
	if err == nil || !strings.Contains(err.Error(), "expected a whole number, got 1.5") {
		t.Fatalf("want the number written out, got %v", err)
	}
}

// Issue 11 item 6: bake { first = "2562047h" } was accepted, and its
// deadline (in 2319) wrapped and passed at once. Every duration in a spec
// or config now has a cap, and exceeding it names the field and the cap.
func TestSecurityDurationOverflow(t *testing.T) {
	base := string(readFile(t, "testdata/good/minimal.hcl"))
	// release sets one field of the minimal spec (by inserting a block
	// or attribute before the closing brace).
	release := func(extra string) string {
		i := strings.LastIndex(base, "}")
		return base[:i] + extra + "\n}\n"
	}
	check := func(kind, inner string) string {
		return "  health {\n    check \"" + kind + "\" {\n      address = \"127.0.0.1:{{port}}\"\n" + inner + "\n    }\n  }"
	}
	base = strings.Replace(base, "  health {\n    check \"tcp\" {\n      address = \"127.0.0.1:{{port}}\"\n    }\n  }\n", "", 1)
	if strings.Contains(base, "health") {
		t.Fatal("minimal.hcl changed: cannot strip its health block")
	}
	cases := []struct {
		name, src, want string
	}{
		{"issue: bake.first", release(check("tcp", "") + "\n  bake {\n    first = \"2562047h\"\n  }"),
			`release.bake.first: must be at most 720h0m0s (30 days), got 2562047h0m0s`},
		{"bake.min", release(check("tcp", "") + "\n  bake {\n    first = \"720h\"\n    min = \"721h\"\n  }"),
			`release.bake.min: must be at most 720h0m0s (30 days), got 721h0m0s`},
		{"healthy_deadline", release("  health {\n    check \"tcp\" {\n      address = \"127.0.0.1:{{port}}\"\n    }\n    healthy_deadline = \"25h\"\n  }"),
			`release.health.healthy_deadline: must be at most 24h0m0s, got 25h0m0s`},
		{"min_healthy_time", release("  health {\n    check \"tcp\" {\n      address = \"127.0.0.1:{{port}}\"\n    }\n    min_healthy_time = \"2000000h\"\n  }"),
			`release.health.min_healthy_time: must be at most 24h0m0s, got 2000000h0m0s`},
		{"check interval", release(check("tcp", "      interval = \"2h\"\n      timeout = \"1s\"")),
			`release.health.check[0].interval: must be at most 1h0m0s, got 2h0m0s`},
		{"check timeout", release(check("tcp", "      interval = \"2h\"\n      timeout = \"90m\"")),
			`release.health.check[0].timeout: must be at most 1h0m0s, got 1h30m0s`},
		{"isolation_timeout", release(check("tcp", "") + "\n  rollback {\n    isolation_timeout = \"48h\"\n  }"),
			`release.rollback.isolation_timeout: must be at most 24h0m0s, got 48h0m0s`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRelease("d.hcl", []byte(c.src))
			if err == nil {
				t.Fatalf("accepted %+v", r)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "d.hcl:") {
				t.Fatalf("want d.hcl:LINE:COL: %s, got:\n%v", c.want, err)
			}
		})
	}
	// At the caps, everything parses.
	ok := release("  health {\n    check \"tcp\" {\n      address = \"127.0.0.1:{{port}}\"\n      interval = \"1h\"\n      timeout = \"1h\"\n    }\n" +
		"    min_healthy_time = \"23h\"\n    healthy_deadline = \"24h\"\n  }\n  bake {\n    first = \"720h\"\n    min = \"720h\"\n  }\n  rollback {\n    isolation_timeout = \"24h\"\n  }")
	r, err := ParseRelease("ok.hcl", []byte(ok))
	if err != nil {
		t.Fatalf("a spec at every cap: %v", err)
	}
	if r.Bake.First != speccore.MaxBakeDuration || r.Health.HealthyDeadline != speccore.MaxHealthyWait || r.Rollback.IsolationTimeout != speccore.MaxIsolationTimeout {
		t.Fatalf("caps not kept: %+v", r)
	}
	// Validate (specs that arrive as values) applies the same caps.
	r.Bake.First = 2562047 * time.Hour
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "release.bake.first: must be at most 720h0m0s (30 days)") {
		t.Fatalf("Validate: %v", err)
	}
}

func TestSecurityDurationOverflowConfigs(t *testing.T) {
	agent := func(extra string) string {
		return "cell = \"a\"\nnode_name = \"n\"\njoin = [\"127.0.0.1:7422\"]\n" + extra + "\n"
	}
	if _, err := speccore.ParseAgentConfig("agent.hcl", []byte(agent(`heartbeat_interval = "5m"`))); err != nil {
		t.Fatalf("heartbeat at the cap: %v", err)
	}
	_, err := speccore.ParseAgentConfig("agent.hcl", []byte(agent(`heartbeat_interval = "2562047h"`)))
	if err == nil || !strings.Contains(err.Error(), "agent.hcl:4:22: heartbeat_interval: must be at most 5m0s, got 2562047h0m0s") {
		t.Fatalf("agent heartbeat_interval: %v", err)
	}
	server := "dev = true\nnode_name = \"n\"\nraft {\n  heartbeat_timeout = \"2m\"\n  election_timeout = \"2m\"\n  leader_lease_timeout = \"2m\"\n  commit_timeout = \"2m\"\n  snapshot_interval = \"25h\"\n}\n"
	_, err = ParseServerConfig("server.hcl", []byte(server))
	for _, want := range []string{
		"server.hcl:4:23: raft.heartbeat_timeout: must be at most 1m0s, got 2m0s",
		"server.hcl:5:22: raft.election_timeout: must be at most 1m0s, got 2m0s",
		"server.hcl:6:26: raft.leader_lease_timeout: must be at most 1m0s, got 2m0s",
		"server.hcl:7:20: raft.commit_timeout: must be at most 1m0s, got 2m0s",
		"server.hcl:8:23: raft.snapshot_interval: must be at most 24h0m0s, got 25h0m0s",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got:\n%v", want, err)
		}
	}
	// Flag-built configs go through Validate.
	c := DefaultServerConfig()
	c.Dev, c.NodeName = true, "n"
	c.Raft.ElectionTimeout = 2562047 * time.Hour
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "raft.election_timeout: must be at most 1m0s") {
		t.Fatalf("Validate: %v", err)
	}
}
