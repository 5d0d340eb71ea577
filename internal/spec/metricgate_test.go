package spec

import (
	"strings"
	"testing"
	"time"
)

// withGates inserts gates text before minimal.hcl's closing brace (line 24).
func withGates(t *testing.T, gates string) string {
	src := minimalSrc(t)
	i := strings.LastIndex(src, "}")
	return src[:i] + gates + src[i:]
}

func TestParseMetricGates(t *testing.T) {
	src := withGates(t, `  gates {
    gate "prometheus" "errors" {
      address = "http://127.0.0.1:9090"
      query   = "sum(rate(http_errors_total{version=\"{{version}}\",host=~\"{{hosts_regex}}\"}[1m]))"
      max     = 0.01
      interval = "15s"
      bearer_token_file = "prom-token"
    }
    gate "prometheus" "success" {
      address = "https://prom.internal"
      query   = "min(success_ratio{app=\"{{app}}\"})"
      min     = 0.99
      max     = 1
    }
    gate "http" {
      url = "https://slo.internal/verdict"
      username = "rollwave"
      password_file = "slo-password"
      ca_file = "slo-ca.pem"
      attempts = 5
    }
  }
`)
	r, err := ParseRelease("spec.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	gs := r.Gates.Metric
	if len(gs) != 3 {
		t.Fatalf("%d gates, want 3", len(gs))
	}
	if g := gs[0]; g.Kind != GatePrometheus || g.Name != "errors" || *g.Max != 0.01 || g.Min != nil ||
		g.Interval != 15*time.Second || g.Timeout != DefaultGateTimeout || g.Attempts != DefaultGateAttempts || g.BearerTokenFile != "prom-token" {
		t.Fatalf("gate 0: %+v", g)
	}
	if g := gs[1]; *g.Min != 0.99 || *g.Max != 1 || g.Interval != DefaultGateInterval {
		t.Fatalf("gate 1: %+v", g)
	}
	if g := gs[2]; g.Kind != GateHTTP || g.Name != "http" || g.URL != "https://slo.internal/verdict" || g.Attempts != 5 || g.PasswordFile != "slo-password" {
		t.Fatalf("gate 2: %+v", g)
	}
}

func TestParseMetricGatesInvalid(t *testing.T) {
	cases := []struct {
		name, gates string
		want        []string
	}{
		{
			// A password in the URL would be replicated and shown; it is
			// refused and not repeated in the error.
			name:  "userinfo",
			gates: "gate \"http\" {\n url = \"https://u:hunter2@slo.internal/\"\n }",
			want:  []string{`release.gates.gate[0].url: URL "https://u:xxxxx@slo.internal/" carries credentials`},
		},
		{
			// A credential file is a name in the coordinator's directory,
			// never a path into the leader's filesystem.
			name:  "credential path",
			gates: "gate \"prometheus\" {\n address = \"http://p:9090\"\n query = \"up\"\n max = 1\n bearer_token_file = \"/etc/rollwave/tls/server.key\"\n }",
			want:  []string{`release.gates.gate[0].bearer_token_file: must be a file name inside the coordinator's gate_credentials_dir`},
		},
		{
			// Neither bound, an unknown placeholder, a bad scheme.
			name:  "prometheus without bounds",
			gates: "gate \"prometheus\" {\n address = \"ftp://p\"\n query = \"up{x=\\\"{{host}}\\\"}\"\n }",
			want: []string{
				`spec.hcl:25:1: release.gates.gate[0].max: a prometheus gate needs max or min`,
				`release.gates.gate[0].address: URL scheme must be http or https, got "ftp://p"`,
				`release.gates.gate[0].query: unknown placeholder {{host}}`,
			},
		},
		{
			// min above max can never pass.
			name:  "min above max",
			gates: "gate \"prometheus\" {\n address = \"http://p:9090\"\n query = \"up\"\n max = 1\n min = 2\n }",
			want:  []string{`release.gates.gate[0].min: must not exceed max (1), got 2`},
		},
		{
			// Unknown kind; http gate with prometheus fields; timeout >
			// interval; attempts out of range; duplicate names.
			name: "mixed",
			gates: "gate \"datadog\" {\n }\n gate \"http\" \"x\" {\n url = \"http://v\"\n max = 3\n interval = \"2s\"\n timeout = \"5s\"\n attempts = 0\n }\n" +
				" gate \"http\" \"x\" {\n url = \"http://v\"\n username = \"u\"\n }",
			want: []string{
				`release.gates.gate[0].kind: must be one of prometheus, http, got "datadog"`,
				`release.gates.gate[1].max: is not used by http gates`,
				`release.gates.gate[1].timeout: must not exceed interval (2s), got 5s`,
				`release.gates.gate[1].attempts: must be from 1 to 10, got 0`,
				`release.gates.gate[2].password_file: basic auth needs both username and password_file`,
				`release.gates.gate[2].name: duplicate gate name "x"`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := withGates(t, "  gates {\n"+tc.gates+"\n }\n")
			r, err := ParseRelease("spec.hcl", []byte(src))
			if r != nil {
				t.Fatal("got a release with errors")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the password leaked into the error: %v", err)
			}
			checkDiags(t, err, tc.want)
		})
	}
}

// The example in examples/ parses.
func TestParseGatesExample(t *testing.T) {
	r := parseFile(t, "../../examples/release-gates.hcl")
	if len(r.Gates.Metric) != 2 || len(r.Health.Checks) != 2 || r.Health.Checks[1].Kind != CheckGRPC {
		t.Fatalf("gates %+v, checks %+v", r.Gates.Metric, r.Health.Checks)
	}
}
