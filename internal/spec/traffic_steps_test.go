package spec

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// trafficSrc is minimal.hcl with its traffic block's body replaced.
func trafficSrc(t *testing.T, body string) string {
	t.Helper()
	src := minimalSrc(t)
	old := "    listen = \"0.0.0.0:9000\"\n"
	if !strings.Contains(src, old) {
		t.Fatalf("minimal.hcl does not contain %q", old)
	}
	return strings.Replace(src, old, body, 1)
}

func TestParseTrafficSteps(t *testing.T) {
	src := trafficSrc(t, "    listen = \"0.0.0.0:9000\"\n    protocol = \"http\"\n    steps = [1, 10, 50, 100]\n    sticky = \"cookie\"\n")
	r, err := ParseRelease("spec.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Traffic.Steps, []int{1, 10, 50, 100}) || r.Traffic.StepTime != DefaultTrafficStepTime || r.Traffic.Sticky != StickyCookie {
		t.Fatalf("traffic = %+v", r.Traffic)
	}
	// Without steps there is no step_time default.
	r, err = ParseRelease("spec.hcl", []byte(minimalSrc(t)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Traffic.StepTime != 0 || r.Traffic.Steps != nil {
		t.Fatalf("traffic without steps = %+v", r.Traffic)
	}
	src = trafficSrc(t, "    mode = \"exec\"\n    command = [\"/lb\", \"{{weight}}\", \"{{port}}\", \"{{old_port}}\", \"{{old_slot}}\"]\n    steps = [10, 50, 100]\n    step_time = \"20s\"\n")
	if r, err = ParseRelease("spec.hcl", []byte(src)); err != nil {
		t.Fatal(err)
	}
	if r.Traffic.StepTime != 20*time.Second {
		t.Fatalf("step_time = %s", r.Traffic.StepTime)
	}
}

func TestParseTrafficStepsInvalid(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string
	}{
		{
			// Steps go up, stay within 1..100 and end at 100.
			name: "order and range",
			body: "    listen = \":9000\"\n    steps = [0, 50, 40, 101]\n",
			want: []string{
				"release.traffic.steps: the last step must be 100",
				"release.traffic.steps[0]: must be a percentage from 1 to 100, got 0",
				"release.traffic.steps[2]: must be above the step before (50), got 40",
				"release.traffic.steps[3]: must be a percentage from 1 to 100, got 101",
			},
		},
		{
			// Too many steps.
			name: "too many",
			body: "    listen = \":9000\"\n    steps = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,100]\n",
			want: []string{"release.traffic.steps: at most 20 steps, got 21"},
		},
		{
			// step_time and sticky need steps.
			name: "step options without steps",
			body: "    listen = \":9000\"\n    step_time = \"1m\"\n    sticky = \"client_ip\"\n",
			want: []string{"release.traffic.step_time: applies only with traffic.steps", "release.traffic.sticky: applies only with traffic.steps"},
		},
		{
			// A cookie needs the HTTP proxy; an unknown sticky mode is named.
			name: "cookie over tcp",
			body: "    listen = \":9000\"\n    steps = [50, 100]\n    sticky = \"cookie\"\n",
			want: []string{`release.traffic.sticky: "cookie" needs mode "proxy" with protocol "http"`},
		},
		{
			name: "bad sticky",
			body: "    listen = \":9000\"\n    steps = [50, 100]\n    sticky = \"session\"\n",
			want: []string{`release.traffic.sticky: must be one of client_ip, cookie, got "session"`},
		},
		{
			// Mode none moves no traffic at all.
			name: "mode none",
			body: "    mode = \"none\"\n    steps = [50, 100]\n",
			want: []string{`release.traffic.steps: need mode "proxy" or "exec" (mode is "none")`},
		},
		{
			// step_time is capped.
			name: "step_time cap",
			body: "    listen = \":9000\"\n    steps = [50, 100]\n    step_time = \"7h\"\n",
			want: []string{"release.traffic.step_time: must be at most 6h0m0s, got 7h0m0s"},
		},
		{
			// An unknown placeholder in the hook is refused.
			name: "bad hook placeholder",
			body: "    mode = \"exec\"\n    command = [\"/lb\", \"{{share}}\"]\n",
			want: []string{"release.traffic.command[1]:"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease("spec.hcl", []byte(trafficSrc(t, tc.body)))
			if r != nil {
				t.Fatalf("got a release with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
	// keep_old = "cold" would stop the slot that takes the rest.
	src := strings.Replace(trafficSrc(t, "    listen = \":9000\"\n    steps = [50, 100]\n"), "green_port = 9002\n", "green_port = 9002\n    keep_old = \"cold\"\n", 1)
	_, err := ParseRelease("spec.hcl", []byte(src))
	checkDiags(t, err, []string{`release.slots.keep_old: must be "hot" with traffic.steps`})
}
