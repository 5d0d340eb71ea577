package spec

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// darkSrc is minimal.hcl with its traffic block's body replaced by
// traffic and a phases block with body phases after it.
func darkSrc(t *testing.T, traffic, phases string) string {
	t.Helper()
	// trafficSrc's replacement ends the traffic block early; the original
	// closing brace then ends the phases block.
	return trafficSrc(t, traffic+"  }\n  phases {\n"+phases)
}

func TestParseDarkPhase(t *testing.T) {
	r, err := ParseRelease("spec.hcl", []byte(darkSrc(t, "    listen = \":9000\"\n    protocol = \"http\"\n", "    dark = \"2m\"\n    shadow = true\n")))
	if err != nil {
		t.Fatal(err)
	}
	ph := r.Phases
	if ph.Dark != 2*time.Minute || !ph.Shadow || ph.ShadowSample != DefaultShadowSample || !slices.Equal(ph.ShadowMethods, DefaultShadowMethods) {
		t.Fatalf("phases = %+v", ph)
	}
	src := darkSrc(t, "    listen = \":9000\"\n    protocol = \"http\"\n    steps = [10, 100]\n",
		"    dark = \"30s\"\n    shadow = true\n    shadow_sample = \"50%\"\n    shadow_methods = [\"GET\", \"POST\"]\n")
	if r, err = ParseRelease("spec.hcl", []byte(src)); err != nil {
		t.Fatal(err)
	}
	if r.Phases.ShadowSample != 0.5 || !slices.Equal(r.Phases.ShadowMethods, []string{"GET", "POST"}) {
		t.Fatalf("phases = %+v", r.Phases)
	}
	// Dark without shadow works over tcp and through an exec hook.
	src = darkSrc(t, "    mode = \"exec\"\n    command = [\"/lb\", \"{{weight}}\"]\n", "    dark = \"1m\"\n")
	if r, err = ParseRelease("spec.hcl", []byte(src)); err != nil {
		t.Fatal(err)
	}
	if r.Phases.Dark != time.Minute || r.Phases.Shadow || r.Phases.ShadowSample != 0 || r.Phases.ShadowMethods != nil {
		t.Fatalf("phases = %+v", r.Phases)
	}
}

func TestParseDarkPhaseInvalid(t *testing.T) {
	const http = "    listen = \":9000\"\n    protocol = \"http\"\n"
	cases := []struct {
		name, traffic, phases string
		want                  []string
	}{
		{"shadow over tcp", "    listen = \":9000\"\n", "    dark = \"1m\"\n    shadow = true\n",
			[]string{`release.phases.shadow: needs traffic.mode "proxy" with protocol "http" (mode "proxy", protocol "tcp")`}},
		{"shadow through exec", "    mode = \"exec\"\n    command = [\"/lb\"]\n", "    dark = \"1m\"\n    shadow = true\n",
			[]string{`release.phases.shadow: needs traffic.mode "proxy" with protocol "http" (mode "exec"`}},
		{"shadow without dark", http, "    shadow = true\n",
			[]string{"release.phases.shadow: needs phases.dark"}},
		{"dark with mode none", "    mode = \"none\"\n", "    dark = \"1m\"\n",
			[]string{`release.phases.dark: needs traffic.mode "proxy" or "exec" (mode is "none")`}},
		{"dark cap", "    listen = \":9000\"\n", "    dark = \"7h\"\n",
			[]string{"release.phases.dark: must be at most 6h0m0s, got 7h0m0s"}},
		{"negative dark", "    listen = \":9000\"\n", "    dark = \"-1m\"\n",
			[]string{"release.phases.dark"}},
		{"sample out of range", http, "    dark = \"1m\"\n    shadow = true\n    shadow_sample = 1.5\n",
			[]string{"release.phases.shadow_sample: must be a share above 0% and at most 100%"}},
		{"zero sample", http, "    dark = \"1m\"\n    shadow = true\n    shadow_sample = \"0%\"\n",
			[]string{"release.phases.shadow_sample: must be a share above 0%"}},
		{"bad and repeated methods", http, "    dark = \"1m\"\n    shadow = true\n    shadow_methods = [\"get\", \"GET\", \"GET\", \"CONNECT\"]\n",
			[]string{`release.phases.shadow_methods[0]: must be one of GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE (upper case), got "get"`,
				`release.phases.shadow_methods[2]: "GET" is listed twice`,
				`release.phases.shadow_methods[3]: must be one of`}},
		{"empty methods", http, "    dark = \"1m\"\n    shadow = true\n    shadow_methods = []\n",
			[]string{"release.phases.shadow_methods: must list at least one method"}},
		{"shadow options without shadow", http, "    dark = \"1m\"\n    shadow_sample = \"5%\"\n    shadow_methods = [\"GET\"]\n",
			[]string{"release.phases.shadow_sample: applies only with shadow = true", "release.phases.shadow_methods: applies only with shadow = true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease("spec.hcl", []byte(darkSrc(t, tc.traffic, tc.phases)))
			if r != nil {
				t.Fatalf("got a release with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
	// keep_old = "cold" would stop the slot that serves the users.
	src := darkSrc(t, "    listen = \":9000\"\n", "    dark = \"1m\"\n")
	src = strings.Replace(src, "green_port = 9002\n", "green_port = 9002\n    keep_old = \"cold\"\n", 1)
	_, err := ParseRelease("spec.hcl", []byte(src))
	checkDiags(t, err, []string{`release.slots.keep_old: must be "hot" with phases.dark`})
}
