package cli

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestKeygen(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		r := run(t, "keygen").expect(t, ExitOK)
		key := strings.TrimSpace(r.stdout)
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(b) != GossipKeySize {
			t.Fatalf("key %q: %d bytes, %v", key, len(b), err)
		}
		if seen[key] {
			t.Fatal("same key twice")
		}
		seen[key] = true
		if err := checkGossipKey(key); err != nil {
			t.Errorf("keygen output refused by keyring: %v", err)
		}
	}
	run(t, "keygen", "extra").expect(t, ExitUsage)
}
