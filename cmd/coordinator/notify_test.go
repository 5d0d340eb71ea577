package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServerConfigNotifyTargets: notify blocks become the coordinator's
// targets with their secret read from secret_file at start; an unreadable
// secret file stops the start naming the block, never the secret.
func TestServerConfigNotifyTargets(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "ops.secret")
	if err := os.WriteFile(secret, []byte("hmac-key-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.hcl", `dev = true
ui_url = "https://rollwave.example.com"
notify "ops" {
  url         = "https://hooks.example.com/rollwave"
  events      = ["release.*"]
  secret_file = "`+secret+`"
}
`)
	missing := write("missing.hcl", `dev = true
notify "ops" {
  url         = "https://hooks.example.com/rollwave"
  events      = ["release.*"]
  secret_file = "`+filepath.Join(dir, "nope")+`"
}
`)
	var f serverFlags
	cmd := newServerCommandWith(&f)
	if err := cmd.Flags().Parse([]string{"--config", good}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(cmd.Flags())
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notify.Targets) != 1 || string(cfg.Notify.Targets[0].Secret) != "hmac-key-123" || cfg.Notify.UIURL != "https://rollwave.example.com" ||
		cfg.Notify.Targets[0].Type != "webhook" {
		t.Fatalf("notify config %+v", cfg.Notify)
	}

	f = serverFlags{}
	cmd = newServerCommandWith(&f)
	if err := cmd.Flags().Parse([]string{"--config", missing}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.config(cmd.Flags()); err == nil || !strings.Contains(err.Error(), `notify[0] "ops": secret_file`) {
		t.Fatalf("missing secret file: %v", err)
	}
}
