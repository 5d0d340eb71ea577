package spec

import (
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec/speccore"
)

// TestSecurityAgentLimitsConfig (issue 11 item 12, gzip bombs): the agent
// config's limits block sets the artifact download and unpacked size
// limits; both default to 2 GiB (the unpacked limit was a hidden 8 GiB),
// and a bad value is refused naming the field. The policy block's users
// and hardening lines get the same checks as releases.
func TestSecurityAgentLimitsConfig(t *testing.T) {
	const head = "cell = \"a\"\njoin = [\"10.0.0.1:7422\"]\n"
	c, err := speccore.ParseAgentConfig("agent.hcl", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxArtifactUnpacked != 2<<30 || c.Limits.MaxArtifactDownload != 2<<30 {
		t.Fatalf("default limits %+v, want 2 GiB each", c.Limits)
	}
	c, err = speccore.ParseAgentConfig("agent.hcl", []byte(head+"limits {\n  max_artifact_unpacked = \"512MiB\"\n  max_artifact_download = 1048576\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxArtifactUnpacked != 512<<20 || c.Limits.MaxArtifactDownload != 1<<20 {
		t.Fatalf("limits %+v, want 512 MiB and 1 MiB", c.Limits)
	}
	for _, tc := range []struct{ body, want string }{
		{`max_artifact_unpacked = "2 bananas"`, `agent.hcl:4:27: limits.max_artifact_unpacked: expected a size such as "2GiB"`},
		{`max_artifact_unpacked = "0"`, "limits.max_artifact_unpacked: must be from 1 byte to 1TiB, got 0 bytes"},
		{`max_artifact_download = -1`, "limits.max_artifact_download: expected a size"},
		{`max_artifact_download = 1.5`, "limits.max_artifact_download: expected a size"},
		{`max_artifact_download = "2TiB"`, "limits.max_artifact_download: must be from 1 byte to 1TiB"},
		{`max_artifact_download = true`, "limits.max_artifact_download: expected a size"},
	} {
		_, err := speccore.ParseAgentConfig("agent.hcl", []byte(head+"limits {\n  "+tc.body+"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error containing %q, got %v", tc.body, tc.want, err)
		}
	}
	for _, tc := range []struct{ body, want string }{
		{`unit_users = ["api", "00"]`, "policy.unit_users[1]: numeric user id \"00\" has leading zeros"},
		{`unit_hardening = ["ProtectSystem=strict \\"]`, "policy.unit_hardening[0]: ends in a backslash"},
		{`unit_hardening = ["ExecStartPost=/bin/sh"]`, "policy.unit_hardening[0]: sets ExecStartPost="},
	} {
		_, err := speccore.ParseAgentConfig("agent.hcl", []byte(head+"policy {\n  "+tc.body+"\n}\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error containing %q, got %v", tc.body, tc.want, err)
		}
	}
}
