package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// withBlock returns minimal.hcl with extra inserted before the release
// block's closing brace and, when slotsKeep is set, slots.keep_old written.
func withBlock(t *testing.T, extra, slotsKeep string) string {
	t.Helper()
	src := minimalSrc(t)
	if slotsKeep != "" {
		const ports = "green_port"
		i := strings.Index(src, ports)
		if i < 0 {
			t.Fatal("minimal.hcl has no green_port")
		}
		j := i + strings.Index(src[i:], "\n")
		src = src[:j] + "\n    keep_old = \"" + slotsKeep + "\"" + src[j:]
	}
	i := strings.LastIndex(src, "}")
	return src[:i] + extra + src[i:]
}

func TestPostRolloutParses(t *testing.T) {
	cases := []struct {
		name      string
		extra     string
		slotsKeep string
		watch     time.Duration
		keep      speccore.WatchKeepOld
	}{
		// Absent: no watch, the release succeeds when its last phase verifies.
		{"absent", "", "", 0, speccore.WatchKeepHot},
		// watch alone after a hot bake: keep_old derives to hot.
		{"watch alone", "  post_rollout {\n    watch = \"1h\"\n  }\n", "", time.Hour, speccore.WatchKeepHot},
		// watch alone after a cold bake: keep_old derives to stopped.
		{"watch after cold", "  post_rollout {\n    watch = \"30m\"\n  }\n", "cold", 30 * time.Minute, speccore.WatchKeepStopped},
		// Written and agreeing.
		{"stopped with cold", "  post_rollout {\n    watch = \"1h\"\n    keep_old = \"stopped\"\n  }\n", "cold", time.Hour, speccore.WatchKeepStopped},
		// A hot bake, then the old slots stopped for the watch.
		{"stopped after a hot bake", "  post_rollout {\n    watch = \"1h\"\n    keep_old = \"stopped\"\n  }\n", "", time.Hour, speccore.WatchKeepStopped},
		// The cap itself is allowed.
		{"at the cap", "  post_rollout {\n    watch = \"168h\"\n  }\n", "", speccore.MaxPostRolloutWatch, speccore.WatchKeepHot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease("spec.hcl", []byte(withBlock(t, tc.extra, tc.slotsKeep)))
			if err != nil {
				t.Fatalf("ParseRelease: %v", err)
			}
			if r.PostRollout.Watch != tc.watch || r.PostRollout.KeepOld != tc.keep {
				t.Fatalf("post_rollout = %+v, want watch %s keep_old %s", r.PostRollout, tc.watch, tc.keep)
			}
		})
	}
}

func TestPostRolloutBad(t *testing.T) {
	cases := []struct {
		name      string
		extra     string
		slotsKeep string
		want      string
	}{
		{"over the cap", "  post_rollout {\n    watch = \"169h\"\n  }\n", "",
			`release.post_rollout.watch: must be at most 168h0m0s (7 days), got 169h0m0s`},
		{"negative", "  post_rollout {\n    watch = \"-1m\"\n  }\n", "",
			`release.post_rollout.watch: must not be negative (0 turns the watch off), got -1m0s`},
		{"unknown keep_old", "  post_rollout {\n    watch = \"1h\"\n    keep_old = \"warm\"\n  }\n", "",
			`release.post_rollout.keep_old: must be one of hot, stopped, got "warm"`},
		{"hot after a cold bake", "  post_rollout {\n    watch = \"1h\"\n    keep_old = \"hot\"\n  }\n", "cold",
			`release.post_rollout.keep_old: "hot" needs slots.keep_old = "hot"`},
		{"misspelt field", "  post_rollout {\n    wach = \"1h\"\n  }\n", "",
			`release.post_rollout: unknown field "wach"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRelease("spec.hcl", []byte(withBlock(t, tc.extra, tc.slotsKeep)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
