package spec

import (
	"strings"
	"testing"
)

func TestParseServerConfigACL(t *testing.T) {
	for name, src := range map[string]string{
		"server.hcl":  "dev = true\nacl {\n  enabled = true\n}\n",
		"server.json": `{"dev": true, "acl": {"enabled": true}}`,
	} {
		c, err := ParseServerConfig(name, []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !c.ACL.Enabled {
			t.Errorf("%s: acl.enabled not set", name)
		}
	}
	if c, err := ParseServerConfig("dev.hcl", []byte("dev = true\n")); err != nil || c.ACL.Enabled {
		t.Fatalf("default: %v %v", c, err)
	}
	_, err := ParseServerConfig("bad.hcl", []byte("dev = true\nacl {\n  enabled = \"yes\"\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.hcl:3:") || !strings.Contains(err.Error(), "enabled") {
		t.Fatalf("bad acl.enabled: %v", err)
	}
}
