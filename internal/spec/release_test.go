package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

const goodSHA = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func parseFile(t *testing.T, name string) *Release {
	t.Helper()
	r, err := ParseRelease(name, readFile(t, name))
	if err != nil {
		t.Fatalf("ParseRelease(%s): %v", name, err)
	}
	return r
}

// designExample is the DESIGN.md example as users see it (README,
// operations.md): the one copy, parsed by the tests below.
const designExample = "../../examples/release.hcl"

// designRelease is what designExample must decode to.
func designRelease() *Release {
	return &Release{
		Name:    "api-2.4.0",
		App:     "api",
		Version: "2.4.0",
		Artifact: Artifact{
			URL:    "https://artifacts.internal/api/2.4.0/api.tar.gz",
			SHA256: goodSHA,
		},
		Unit: Unit{
			ExecStart:   "{{slot_dir}}/bin/api --listen 127.0.0.1:{{port}}",
			User:        "api",
			Environment: map[string]string{"LOG_LEVEL": "info"},
			Restart:     "on-failure",
		},
		Slots:   Slots{BluePort: 8081, GreenPort: 8082, KeepOld: KeepHot},
		Traffic: Traffic{Mode: TrafficProxy, Listen: ":8080"},
		Target:  Target{Cells: []string{"*"}, Exclude: []string{"db-*"}},
		Phases: Phases{
			Canary: 1, Growth: GrowthGeometric, Factor: 2, Step: 0,
			MaxSize: speccore.Quantity{Value: 25, Percent: true}, PerCellMax: 10, ParallelCellsAfter: 3,
		},
		Bake: Bake{First: 30 * time.Minute, Decay: 0.5, Min: 5 * time.Minute},
		Health: Health{
			Checks: []Check{{
				Kind: CheckHTTP, Name: "http", URL: "http://127.0.0.1:{{port}}/healthz",
				ExpectStatus: 200, Interval: 2 * time.Second, Timeout: time.Second,
			}},
			MinHealthyTime:  10 * time.Second,
			HealthyDeadline: 2 * time.Minute,
		},
		Gates: Gates{
			MaxFailedHosts: speccore.Quantity{Value: 5, Percent: true}, MaxUnreachable: speccore.Quantity{Value: 1},
			MaxCPUPercent: 90, MaxMemPercent: 90, MaxRestarts: 2,
			Baseline: BaselineCompare, BaselineMinSamples: 20, MinRequests: DefaultMinRequests,
		},
		Rollback:    Rollback{OnFailure: OnFailureAll, IsolationTimeout: 30 * time.Second, OnControlPlaneLoss: speccore.ControlPlaneLossHold, MaxRollbackTime: 10 * time.Second},
		Approval:    Approval{AfterPhases: []int{0}},
		Converge:    ConvergeManual,
		PostRollout: PostRollout{KeepOld: speccore.WatchKeepHot},
	}
}

func TestParseReleaseDesignExample(t *testing.T) {
	got := parseFile(t, designExample)
	if want := designRelease(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseReleaseJSONParity(t *testing.T) {
	hcl := parseFile(t, designExample)
	json := parseFile(t, "testdata/good/release.json")
	if !reflect.DeepEqual(hcl, json) {
		t.Fatalf("HCL and JSON differ:\nhcl  %+v\njson %+v", hcl, json)
	}
}

func TestParseReleaseDefaults(t *testing.T) {
	got := parseFile(t, "testdata/good/minimal.hcl")
	want := DefaultRelease()
	want.Name, want.App, want.Version = "web-1.0.0", "web", "1.0.0"
	want.Artifact = Artifact{URL: "file:///srv/artifacts/web-1.0.0.tar.gz", SHA256: goodSHA}
	want.Unit.ExecStart = "{{slot_dir}}/web"
	want.Slots.BluePort, want.Slots.GreenPort = 9001, 9002
	want.Traffic.Listen = "0.0.0.0:9000"
	want.Health.Checks = []Check{{Kind: CheckTCP, Name: "tcp", Address: "127.0.0.1:{{port}}", Interval: 2 * time.Second, Timeout: time.Second}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
	// Spot-check the documented defaults themselves.
	d := DefaultRelease()
	if d.Phases.Growth != GrowthGeometric || d.Phases.Factor != 2 || d.Phases.Canary != 1 ||
		d.Slots.KeepOld != KeepHot || d.Traffic.Mode != TrafficProxy ||
		d.Bake != (Bake{First: 30 * time.Minute, Decay: 0.5, Min: 5 * time.Minute}) ||
		d.Health.MinHealthyTime != 10*time.Second || d.Health.HealthyDeadline != 2*time.Minute ||
		d.Rollback != (Rollback{OnFailure: OnFailureAll, IsolationTimeout: 30 * time.Second, OnControlPlaneLoss: speccore.ControlPlaneLossHold, MaxRollbackTime: 10 * time.Second}) ||
		d.Gates.Baseline != BaselineOff || d.Gates.BaselineMinSamples != 20 ||
		d.Gates.MaxFailedHosts != (speccore.Quantity{}) || d.Gates.MaxUnreachable != (speccore.Quantity{}) ||
		d.Converge != ConvergeManual {
		t.Fatalf("unexpected defaults: %+v", d)
	}
}

// checkDiags asserts that err is a Diagnostics with exactly len(want)
// entries and that each want is a substring of its own diagnostic line.
func checkDiags(t *testing.T, err error, want []string) {
	t.Helper()
	var ds speccore.Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("error %v (%T) is not a Diagnostics", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(ds) {
		t.Fatalf("Error() has %d lines for %d diagnostics", len(lines), len(ds))
	}
	if len(ds) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%v", len(ds), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("diagnostic %d:\n got  %s\n want substring %s", i, lines[i], w)
		}
	}
}

// The request gates and the proxy protocol parse: "1%" and 0.01 are the
// same share.
func TestParseReleaseRequestGates(t *testing.T) {
	src, err := os.ReadFile("testdata/good/minimal.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, share := range []string{`"1%"`, "0.01"} {
		s := strings.Replace(string(src), `listen = "0.0.0.0:9000"`, "listen = \"0.0.0.0:9000\"\n    protocol = \"http\"", 1)
		s = strings.Replace(s, "  health {", "  gates {\n    max_error_rate = "+share+"\n    max_latency_p99 = \"300ms\"\n    min_requests = 500\n  }\n  health {", 1)
		r, err := ParseRelease("spec.hcl", []byte(s))
		if err != nil {
			t.Fatalf("%s: %v", share, err)
		}
		if r.Traffic.Protocol != ProtocolHTTP || r.Gates.MaxErrorRate != 0.01 || r.Gates.MaxLatencyP99 != 300*time.Millisecond || r.Gates.MinRequests != 500 {
			t.Fatalf("%s: traffic %+v gates %+v", share, r.Traffic, r.Gates)
		}
	}
}

func TestParseReleaseBadFiles(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		// A misspelt attribute: named at its own position, with the valid
		// names; the real sha256 is then missing too.
		{"unknown_field.hcl", []string{
			`bad/unknown_field.hcl:5:3: release.artifact: missing required field "sha256"`,
			`bad/unknown_field.hcl:7:5: release.artifact: unknown field "sha"; expected one of url, sha256`,
		}},
		// A quoted port is a string, not a number.
		{"wrong_type.hcl", []string{
			`bad/wrong_type.hcl:15:18: release.slots.blue_port: expected a number, got string "8081"`,
		}},
		// The same mistakes in JSON, with a spelling suggestion.
		{"wrong_type.json", []string{
			`bad/wrong_type.json:12:9: release.unit: unknown field "usr" (did you mean "user"?); expected one of exec_start, user,`,
			`bad/wrong_type.json:15:31: release.slots.blue_port: expected a number, got string "8081"`,
		}},
		// Missing required field: reported at the block.
		{"missing_sha256.hcl", []string{
			`bad/missing_sha256.hcl:5:3: release.artifact: missing required field "sha256"`,
		}},
		// Negative factor under geometric growth: at the value.
		{"negative_factor.hcl", []string{
			`bad/negative_factor.hcl:25:14: release.phases.factor: must be greater than 1 for geometric growth, got -2`,
		}},
		// Not a Go duration.
		{"bad_duration.hcl", []string{
			`bad/bad_duration.hcl:24:13: release.bake.first: expected a duration such as "30s", "5m" or "1h30m", got "30 minutes"`,
		}},
		// keep_old must be hot or cold.
		{"bad_enum.hcl", []string{
			`bad/bad_enum.hcl:17:18: release.slots.keep_old: must be one of hot, cold, got "warm"`,
		}},
		// Two release blocks in one file.
		{"duplicate_release.hcl", []string{
			`bad/duplicate_release.hcl:34:1: release: duplicate release block "api-2.4.1"; a file holds exactly one release (the first, "api-2.4.0", is at line 1)`,
		}},
		// A misspelt placeholder is named, with the valid ones.
		{"unknown_template.hcl", []string{
			`bad/unknown_template.hcl:11:18: release.unit.exec_start: unknown placeholder {{prot}} in "{{slot_dir}}/bin/api --port {{prot}}"; expected {{slot_dir}}, {{port}}, {{slot}}, {{version}}, {{app}}`,
		}},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			name := filepath.Join("testdata", "bad", tc.file)
			r, err := ParseRelease(name, readFile(t, name))
			if r != nil {
				t.Errorf("got a release with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
	// Every bad example has a case.
	files, _ := filepath.Glob("testdata/bad/*")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
}

// minimalSrc is testdata/good/minimal.hcl; its closing brace is alone on
// line 24, so text added by the cases below starts at line 24.
func minimalSrc(t *testing.T) string {
	t.Helper()
	return string(readFile(t, "testdata/good/minimal.hcl"))
}

func TestParseReleaseInvalid(t *testing.T) {
	cases := []struct {
		name string
		// old is replaced by new in minimal.hcl; extra is inserted before
		// the release block's closing brace (at line 24).
		old, new string
		extra    string
		want     []string
	}{
		{
			// Linear growth needs a step; reported at the phases block.
			name:  "linear without step",
			extra: "  phases {\n    growth = \"linear\"\n  }\n",
			want:  []string{`spec.hcl:24:3: release.phases.step: must be at least 1 for linear growth, got 0`},
		},
		{
			// Enum outside its set.
			name:  "bad growth",
			extra: "  phases {\n    growth = \"exponential\"\n  }\n",
			want:  []string{`spec.hcl:25:14: release.phases.growth: must be one of geometric, linear, got "exponential"`},
		},
		{
			// A factor of exactly 1 never grows.
			name:  "factor one",
			extra: "  phases {\n    factor = 1\n  }\n",
			want:  []string{`spec.hcl:25:14: release.phases.factor: must be greater than 1 for geometric growth, got 1`},
		},
		{
			// Canary below 1 and a fractional count.
			name:  "canary zero and fractional max_size",
			extra: "  phases {\n    canary = 0\n    max_size = 2.5\n  }\n",
			want: []string{
				`spec.hcl:25:14: release.phases.canary: must be at least 1, got 0`,
				`spec.hcl:26:16: release.phases.max_size: a count must be a whole number, got 2.5`,
			},
		},
		{
			// A percentage above 100 and a garbage quantity string.
			name:  "bad quantities",
			extra: "  gates {\n    max_failed_hosts = \"150%\"\n    max_unreachable = \"lots\"\n  }\n",
			want: []string{
				`spec.hcl:25:24: release.gates.max_failed_hosts: a percentage must be from 0% to 100%, got 150%`,
				`spec.hcl:26:23: release.gates.max_unreachable: expected a count such as 2 or a percentage such as "5%", got "lots"`,
			},
		},
		{
			// Resource gates are percentages.
			name:  "cpu over 100",
			extra: "  gates {\n    max_cpu_percent = 120\n    baseline = \"on\"\n  }\n",
			want: []string{
				`spec.hcl:25:23: release.gates.max_cpu_percent: must be a percentage from 0 to 100 (0 means no gate), got 120`,
				`spec.hcl:26:16: release.gates.baseline: must be one of compare, off, got "on"`,
			},
		},
		{
			// Request gates: a share above 100%, a negative p99, no
			// traffic floor, an unknown proxy protocol.
			name: "request gates",
			old:  `listen = "0.0.0.0:9000"`, new: "listen = \"0.0.0.0:9000\"\n    protocol = \"udp\"",
			extra: "  gates {\n    max_error_rate = \"150%\"\n    max_latency_p99 = \"-1s\"\n    min_requests = 0\n  }\n",
			want: []string{
				`spec.hcl:18:16: release.traffic.protocol: must be one of tcp, http, got "udp"`,
				`spec.hcl:26:22: release.gates.max_error_rate: must be from "0%" (no gate) to below "100%", got 150%`,
				`spec.hcl:27:23: release.gates.max_latency_p99: must not be negative (0 means no gate), got -1s`,
				`spec.hcl:28:20: release.gates.min_requests: must be at least 1, got 0`,
			},
		},
		{
			// A share must be a percentage or a fraction; a p99 above the cap.
			name:  "error rate text and p99 cap",
			extra: "  gates {\n    max_error_rate = \"lots\"\n    max_latency_p99 = \"3m\"\n  }\n",
			want: []string{
				`spec.hcl:25:22: release.gates.max_error_rate: expected a percentage such as "1%" or a fraction such as 0.01, got "lots"`,
				`spec.hcl:26:23: release.gates.max_latency_p99: must be at most 2m0s, got 3m0s`,
			},
		},
		{
			// protocol is the proxy's; an exec hook has none.
			name: "protocol without proxy",
			old:  `listen = "0.0.0.0:9000"`, new: "mode = \"exec\"\n    command = [\"/lb\"]\n    protocol = \"http\"",
			want: []string{`release.traffic.protocol: applies to mode "proxy" only (mode is "exec"); remove it`},
		},
		{
			// Decay outside (0,1], min above first, a negative duration.
			name:  "bake",
			extra: "  bake {\n    first = \"1m\"\n    decay = 1.5\n    min = \"2m\"\n  }\n  rollback {\n    isolation_timeout = \"-5s\"\n  }\n",
			want: []string{
				`spec.hcl:26:13: release.bake.decay: must be greater than 0 and at most 1, got 1.5`,
				`spec.hcl:27:11: release.bake.min: must not exceed first (1m0s), got 2m0s`,
				`spec.hcl:30:25: release.rollback.isolation_timeout: must be a positive duration, got -5s`,
			},
		},
		{
			// on_control_plane_loss is hold or revert.
			name:  "control plane loss",
			extra: "  rollback {\n    on_control_plane_loss = \"panic\"\n  }\n",
			want: []string{
				`spec.hcl:25:29: release.rollback.on_control_plane_loss: must be one of hold, revert, got "panic"`,
			},
		},
		{
			// max_rollback_time is positive and capped; rehearse is a bool.
			name:  "rehearse",
			extra: "  rollback {\n    rehearse = \"yes\"\n    max_rollback_time = \"11m\"\n  }\n",
			want: []string{
				`spec.hcl:25:16: release.rollback.rehearse: expected true or false, got string`,
				`spec.hcl:26:25: release.rollback.max_rollback_time: must be at most 10m0s, got 11m0s`,
			},
		},
		{
			// converge is manual or auto.
			name:  "converge",
			extra: "  converge = \"always\"\n",
			want: []string{
				`release.converge: must be one of manual, auto, got "always"`,
			},
		},
		{
			// Both slots on one port.
			name: "same ports",
			old:  "green_port = 9002", new: "green_port = 9001",
			want: []string{`spec.hcl:14:18: release.slots.green_port: must differ from blue_port, got 9001 for both`},
		},
		{
			// Port out of range.
			name: "port range",
			old:  "blue_port  = 9001", new: "blue_port  = 70000",
			want: []string{`spec.hcl:13:18: release.slots.blue_port: must be a port from 1 to 65535, got 70000`},
		},
		{
			// A short digest.
			name: "short sha256",
			old:  goodSHA, new: "9f2c",
			want: []string{`spec.hcl:7:14: release.artifact.sha256: must be 64 hexadecimal characters, got "9f2c" (4 characters)`},
		},
		{
			// ftp is not a supported scheme.
			name: "url scheme",
			old:  "file:///srv/artifacts/web-1.0.0.tar.gz", new: "ftp://host/web.tar.gz",
			want: []string{`spec.hcl:6:14: release.artifact.url: URL scheme must be one of http, https, file, got "ftp://host/web.tar.gz"`},
		},
		{
			// The proxy needs somewhere to listen.
			name: "proxy without listen",
			old:  "    listen = \"0.0.0.0:9000\"\n", new: "",
			want: []string{`spec.hcl:16:3: release.traffic.listen: is required when mode is "proxy"`},
		},
		{
			// listen must be host:port.
			name: "listen not host:port",
			old:  "\"0.0.0.0:9000\"", new: "\"9000\"",
			want: []string{`spec.hcl:17:14: release.traffic.listen: expected host:port such as "127.0.0.1:8080" or ":8080", got "9000"`},
		},
		{
			// exec mode needs its hook; no listen needed.
			name: "exec without command",
			old:  "listen = \"0.0.0.0:9000\"", new: "mode = \"exec\"",
			want: []string{`spec.hcl:16:3: release.traffic.command: is required when mode is "exec"`},
		},
		{
			// Health without any check.
			name: "no checks",
			old:  "    check \"tcp\" {\n      address = \"127.0.0.1:{{port}}\"\n    }\n", new: "",
			want: []string{`spec.hcl:19:3: release.health: needs at least one check block`},
		},
		{
			// Unknown check kind, named at its label.
			name: "bad check kind",
			old:  `check "tcp"`, new: `check "icmp"`,
			want: []string{`spec.hcl:20:11: release.health.check[0].kind: must be one of http, grpc, tcp, exec, unit, got "icmp"`},
		},
		{
			// Two unnamed checks of one kind collide; a second label fixes it.
			name: "duplicate check names",
			old:  "    check \"tcp\" {", new: "    check \"unit\" {}\n    check \"unit\" {}\n    check \"tcp\" \"port\" {",
			want:  []string{`spec.hcl:21:5: release.health.check[1].name: duplicate check name "unit" (also check 0)`},
			extra: "",
		},
		{
			// An http check missing its url, and a timeout above interval.
			name: "http check",
			old:  "    check \"tcp\" {\n      address = \"127.0.0.1:{{port}}\"\n    }\n",
			new:  "    check \"http\" {\n      timeout = \"5s\"\n      body_match = \"(\"\n    }\n",
			want: []string{
				`spec.hcl:20:5: release.health.check[0]: missing required field "url"`,
				`spec.hcl:21:17: release.health.check[0].timeout: must not exceed interval (2s), got 5s`,
				`spec.hcl:22:20: release.health.check[0].body_match: expected a regular expression, got "("`,
			},
		},
		{
			// Three labels on a check.
			name: "check labels",
			old:  `check "tcp"`, new: `check "tcp" "a" "b"`,
			want: []string{`spec.hcl:20:5: release.health.check: block "check" takes labels kind and an optional name, got 3 labels`},
		},
		{
			// A deadline that cannot be met.
			name: "healthy deadline",
			old:  "  health {\n", new: "  health {\n    min_healthy_time = \"1m\"\n    healthy_deadline = \"30s\"\n",
			want:  []string{`spec.hcl:21:24: release.health.healthy_deadline: must be longer than min_healthy_time (1m0s), got 30s`},
			extra: "",
		},
		{
			// A newline would inject systemd directives; bad env names.
			name: "unit injection",
			old:  "exec_start = \"{{slot_dir}}/web\"", new: "exec_start = \"{{slot_dir}}/web\\nExecStartPost=/bin/sh\"\n    environment = { \"BAD-KEY\" = \"x\" }\n    restart = \"sometimes\"",
			want: []string{
				`spec.hcl:10:18: release.unit.exec_start: must not contain control characters such as newlines`,
				`spec.hcl:11:33: release.unit.environment.BAD-KEY: environment variable name must be letters, digits and '_'`,
				`spec.hcl:12:15: release.unit.restart: must be one of no, always, on-success, on-failure, on-abnormal, on-abort, on-watchdog, got "sometimes"`,
			},
		},
		{
			// Artifact URLs may only use {{app}} and {{version}}.
			name: "artifact placeholder",
			old:  "file:///srv/artifacts/web-1.0.0.tar.gz", new: "https://a.example/{{app}}/{{slot}}.tar.gz",
			want: []string{`spec.hcl:6:14: release.artifact.url: unknown placeholder {{slot}} in "https://a.example/{{app}}/{{slot}}.tar.gz"; expected {{version}}, {{app}}`},
		},
		{
			// Unbalanced braces.
			name: "unterminated placeholder",
			old:  "{{slot_dir}}/web", new: "{{slot_dir}}/web --port {{port",
			want: []string{`spec.hcl:10:18: release.unit.exec_start: unbalanced braces in "{{slot_dir}}/web --port {{port"`},
		},
		{
			// Required fields missing: reported at the release block.
			name: "missing app and version",
			old:  "  app     = \"web\"\n  version = \"1.0.0\"\n", new: "",
			want: []string{
				`spec.hcl:2:1: release: missing required field "app"`,
				`spec.hcl:2:1: release: missing required field "version"`,
			},
		},
		{
			// Required blocks missing.
			name: "missing slots block",
			old:  "  slots {\n    blue_port  = 9001\n    green_port = 9002\n  }\n", new: "",
			want: []string{`spec.hcl:2:1: release: missing required block "slots"`},
		},
		{
			// A block given twice.
			name:  "duplicate block",
			extra: "  traffic {\n    mode = \"none\"\n  }\n",
			want:  []string{`spec.hcl:24:3: release.traffic: duplicate "traffic" block; it is already defined at line 16`},
		},
		{
			// An attribute used as a block and an unknown block.
			name:  "unknown block",
			extra: "  canary {\n  }\n",
			want:  []string{`spec.hcl:24:3: release: unknown block "canary"; expected one of app, version, artifact,`},
		},
		{
			// A block written as a field and a field written as a block.
			name: "block and field confused",
			old:  "  traffic {\n    listen = \"0.0.0.0:9000\"\n  }\n", new: "  traffic = \"proxy\"\n  app {\n  }\n",
			// No follow-on "missing app" or "listen required".
			want: []string{
				`spec.hcl:16:3: release.traffic: "traffic" is a block, not a field; write traffic { ... }`,
				`spec.hcl:17:3: release.app: "app" is a field, not a block; write app = ...`,
			},
		},
		{
			// Variables and functions do not exist in specs.
			name: "variable reference",
			old:  "app     = \"web\"", new: "app     = var.app",
			want: []string{`spec.hcl:3:13: release.app: variables not allowed`},
		},
		{
			// A list where a string belongs, and a list element of the
			// wrong type (positioned at the element).
			name: "list types",
			old:  "app     = \"web\"", new: "app     = [\"web\"]",
			extra: "  target {\n    cells = [\"eu-*\", 3, \"[\"]\n  }\n",
			want: []string{
				`spec.hcl:3:13: release.app: expected a string, got list`,
				`spec.hcl:25:22: release.target.cells[1]: expected a string, got number 3`,
				`spec.hcl:25:25: release.target.cells[2]: expected a glob such as "eu-*", got "["`,
			},
		},
		{
			// Approval phases must be distinct, non-negative whole numbers.
			name:  "approval",
			extra: "  approval { after_phases = [0, 0, -1, 1.5] }\n",
			want: []string{
				`spec.hcl:24:33: release.approval.after_phases[1]: phase 0 is listed twice`,
				`spec.hcl:24:36: release.approval.after_phases[2]: phase indexes start at 0 (the canary), got -1`,
				`spec.hcl:24:40: release.approval.after_phases[3]: expected a whole number, got 1.5`,
			},
		},
		{
			// A syntax error is reported as such, with no field.
			name: "syntax error",
			old:  "app     = \"web\"", new: "app     = = \"web\"",
			want: []string{`spec.hcl:3:13: invalid expression`},
		},
		{
			// No release block at all.
			name: "empty file",
			old:  minimalMarker, new: "",
			want: []string{`spec.hcl:1:1: missing required block release "NAME" { ... }`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := minimalSrc(t)
			if tc.old == minimalMarker {
				src = ""
			} else if tc.old != "" {
				if !strings.Contains(src, tc.old) {
					t.Fatalf("minimal.hcl does not contain %q", tc.old)
				}
				src = strings.Replace(src, tc.old, tc.new, 1)
			}
			if tc.extra != "" {
				i := strings.LastIndex(src, "}")
				src = src[:i] + tc.extra + src[i:]
			}
			r, err := ParseRelease("spec.hcl", []byte(src))
			if r != nil {
				t.Errorf("got a release with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
}

// minimalMarker asks TestParseReleaseInvalid for an empty file.
const minimalMarker = "\x00empty"

func TestReleaseValidateWithoutPositions(t *testing.T) {
	r := designRelease()
	if err := r.Validate(); err != nil {
		t.Fatalf("design example: %v", err)
	}
	r.Phases.Factor = -2
	r.Artifact.SHA256 = ""
	err := r.Validate()
	// No file: the message starts with the field path.
	checkDiags(t, err, []string{
		`release.artifact: missing required field "sha256"`,
		`release.phases.factor: must be greater than 1 for geometric growth, got -2`,
	})
	if strings.HasPrefix(err.Error(), ":") {
		t.Errorf("position printed without a file: %v", err)
	}
}

func TestDiagnosticError(t *testing.T) {
	cases := []struct {
		d    speccore.Diagnostic
		want string
	}{
		// Everything known.
		{speccore.Diagnostic{File: "a.hcl", Line: 3, Column: 5, Field: "release.app", Message: "bad"}, "a.hcl:3:5: release.app: bad"},
		// No position (flag-built config).
		{speccore.Diagnostic{Field: "data_dir", Message: "is required"}, "data_dir: is required"},
		// No field (syntax error).
		{speccore.Diagnostic{File: "a.hcl", Line: 1, Column: 1, Message: "syntax"}, "a.hcl:1:1: syntax"},
	}
	for _, tc := range cases {
		if got := tc.d.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	ds := speccore.Diagnostics{cases[0].d, cases[1].d}
	if got, want := ds.Error(), cases[0].want+"\n"+cases[1].want; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestExpand(t *testing.T) {
	v := speccore.TemplateVars{SlotDir: "/srv/api/green", Port: 8082, Slot: "green", Version: "2.4.0", App: "api"}
	got := speccore.Expand("{{slot_dir}}/bin/{{app}}-{{version}} --port {{port}} --slot {{slot}} {{other}}", v)
	want := "/srv/api/green/bin/api-2.4.0 --port 8082 --slot green {{other}}"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestQuantity(t *testing.T) {
	cases := []struct {
		in      string
		want    speccore.Quantity
		of100   int
		wantErr bool
	}{
		{"25%", speccore.Quantity{Value: 25, Percent: true}, 25, false},  // percentage
		{"3", speccore.Quantity{Value: 3}, 3, false},                     // count
		{"2.5%", speccore.Quantity{Value: 2.5, Percent: true}, 2, false}, // rounds down
		{"abc", speccore.Quantity{}, 0, true},                            // garbage
		{"%", speccore.Quantity{}, 0, true},                              // no number
	}
	for _, tc := range cases {
		got, err := speccore.ParseQuantity(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err == nil && (got != tc.want || got.Of(100) != tc.of100 || got.String() != tc.in) {
			t.Errorf("%q: got %+v (of 100: %d, %s)", tc.in, got, got.Of(100), got)
		}
	}
}

func TestParseReleaseJSONChecks(t *testing.T) {
	// JSON cannot give a check a second label: it names checks with the
	// name attribute, and writes several checks of one kind as an array.
	src := strings.Replace(string(readFile(t, "testdata/good/release.json")),
		`"check": {
          "http": {
            "url": "http://127.0.0.1:{{port}}/healthz",`,
		`"check": [
          {"http": {"name": "live", "url": "http://127.0.0.1:{{port}}/live"}},
          {"unit": {}},
          {"http": {
            "name": "ready",
            "url": "http://127.0.0.1:{{port}}/healthz",`, 1)
	src = strings.Replace(src, `"timeout": "1s"
          }
        },`, `"timeout": "1s"
          }}
        ],`, 1)
	r, err := ParseRelease("checks.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range r.Health.Checks {
		names = append(names, string(c.Kind)+":"+c.Name)
	}
	if got := strings.Join(names, ","); got != "http:live,unit:unit,http:ready" {
		t.Fatalf("checks %s", got)
	}
}

func TestUnitHardening(t *testing.T) {
	src := strings.Replace(string(readFile(t, "testdata/good/minimal.hcl")), "unit {", "unit {\n    hardening = [\"ProtectSystem=strict\", \"PrivateDevices=yes\"]", 1)
	r, err := ParseRelease("h.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unit.Hardening) != 2 || r.Unit.Hardening[0] != "ProtectSystem=strict" {
		t.Fatalf("hardening not parsed: %v", r.Unit.Hardening)
	}
	bad := strings.Replace(string(readFile(t, "testdata/good/minimal.hcl")), "unit {", "unit {\n    hardening = [\"no equals sign\"]", 1)
	if _, err := ParseRelease("h.hcl", []byte(bad)); err == nil || !strings.Contains(err.Error(), "release.unit.hardening[0]") {
		t.Fatalf("want an error naming release.unit.hardening[0], got %v", err)
	}
}
