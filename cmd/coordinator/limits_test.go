package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator"
)

// The limits block reaches the coordinator; without it the safe defaults
// apply (issue 11 item 7).
func TestServerLimitsSetting(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "server.hcl")
	src := "dev = true\nlimits {\n  rpc_max_conns_per_client = 7\n  rpc_max_conns = 70\n  rpc_handshake_timeout = \"2s\"\n  rpc_idle_timeout = \"30s\"\n}\n"
	if err := os.WriteFile(cfgFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want coordinator.Limits
	}{
		{[]string{"--dev"}, coordinator.DefaultLimits()},
		{[]string{"--config", cfgFile}, coordinator.Limits{RPCMaxConnsPerClient: 7, RPCMaxConns: 70, RPCHandshakeTimeout: 2 * time.Second, RPCIdleTimeout: 30 * time.Second}},
	} {
		var f serverFlags
		cmd := newServerCommandWith(&f)
		if err := cmd.Flags().Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(cmd.Flags())
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if cfg.Limits != tc.want {
			t.Errorf("%v: Limits = %+v, want %+v", tc.args, cfg.Limits, tc.want)
		}
	}
}
