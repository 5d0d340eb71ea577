package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec"
)

// TestSecurityTokenFromFileServerKey (issue 11 item 11b): the gossip key
// could only be given with -encrypt (visible in ps) or inline in the config
// file. It now comes from -encrypt-file, ROLLWAVE_ENCRYPT(_FILE) or
// encrypt_file too, in that documented order: flags, environment, config.
func TestSecurityTokenFromFileServerKey(t *testing.T) {
	dir := t.TempDir()
	const (
		keyA = "4uhxHbB0k2mEGXW4x8YcLdSU8QpTvhTq9VrVmGM3nXw=" // flag file
		keyB = "bA6J2d1vh1BaZdzD0sJ/5p0VUSQ4iPT+tHPyaDGBvXI=" // environment
		keyC = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE=" // config file
	)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fileA := write("a.key", keyA+"\n")
	fileB := write("b.key", keyB)
	fileC := write("c.key", keyC+"\n")
	cfgInline := write("inline.hcl", "dev = true\nencrypt = \""+keyC+"\"\n")
	cfgFile := write("file.hcl", "dev = true\nencrypt_file = \""+fileC+"\"\n")
	cfgBoth := write("both.hcl", "dev = true\nencrypt = \""+keyC+"\"\nencrypt_file = \""+fileC+"\"\n")
	empty := write("empty.key", "\n")
	bad := write("bad.key", "not-a-key\n")

	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // key; "" with wantErr
		wantErr string
	}{
		{"flag file", []string{"--dev", "--encrypt-file", fileA}, nil, keyA, ""},
		{"env value", []string{"--dev"}, map[string]string{spec.EnvEncrypt: keyB}, keyB, ""},
		{"env file", []string{"--dev"}, map[string]string{spec.EnvEncryptFile: fileB}, keyB, ""},
		{"config encrypt_file", []string{"--config", cfgFile}, nil, keyC, ""},
		{"config inline", []string{"--config", cfgInline}, nil, keyC, ""},
		// Precedence: flags, then the environment, then the config file.
		{"flag beats env", []string{"--dev", "--encrypt-file", fileA}, map[string]string{spec.EnvEncrypt: keyB}, keyA, ""},
		{"env beats config", []string{"--config", cfgFile}, map[string]string{spec.EnvEncryptFile: fileB}, keyB, ""},
		// Ambiguous or broken sources are errors naming them; nothing starts.
		{"flag and flag file", []string{"--dev", "--encrypt", keyA, "--encrypt-file", fileA}, nil, "", "both -encrypt and -encrypt-file"},
		{"env and env file", []string{"--dev"}, map[string]string{spec.EnvEncrypt: keyB, spec.EnvEncryptFile: fileB}, "", "both ROLLWAVE_ENCRYPT and ROLLWAVE_ENCRYPT_FILE"},
		{"config both", []string{"--config", cfgBoth}, nil, "", "encrypt_file"},
		{"missing file", []string{"--dev", "--encrypt-file", filepath.Join(dir, "nope")}, nil, "", "-encrypt-file"},
		{"empty file", []string{"--dev", "--encrypt-file", empty}, nil, "", "is empty"},
		{"bad key in file", []string{"--dev", "--encrypt-file", bad}, nil, "", "gossip key from -encrypt-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(spec.EnvEncrypt, tc.env[spec.EnvEncrypt])
			t.Setenv(spec.EnvEncryptFile, tc.env[spec.EnvEncryptFile])
			var f serverFlags
			cmd := newServerCommandWith(&f)
			if err := cmd.Flags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.config(cmd.Flags())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
				if strings.Contains(err.Error(), "not-a-key") {
					t.Errorf("the error shows the file's content: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := spec.GossipKeyBytes(tc.want); !bytes.Equal(cfg.GossipKey, got) {
				t.Fatalf("gossip key = %x, want %x", cfg.GossipKey, got)
			}
		})
	}
}
