package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/spec"
)

// TestSecurityTokenFromFileAgentKey (issue 11 item 11b): the agent's gossip
// key came only from -encrypt (visible in ps) or the config file. It now
// comes from -encrypt-file, ROLLWAVE_ENCRYPT(_FILE) or encrypt_file too:
// flags, then the environment, then the config file.
func TestSecurityTokenFromFileAgentKey(t *testing.T) {
	dir := t.TempDir()
	const keyA, keyB = "4uhxHbB0k2mEGXW4x8YcLdSU8QpTvhTq9VrVmGM3nXw=", "bA6J2d1vh1BaZdzD0sJ/5p0VUSQ4iPT+tHPyaDGBvXI="
	fileA := filepath.Join(dir, "a.key")
	if err := os.WriteFile(fileA, []byte(keyA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Precedence.
	t.Setenv(spec.EnvEncrypt, keyB)
	t.Setenv(spec.EnvEncryptFile, "")
	key, file := "", ""
	if from, err := spec.ResolveGossipKey(&key, &file, "", fileA); err != nil || key != keyA || from != "-encrypt-file" {
		t.Fatalf("flag file with env set: key %q from %q, %v; want the file's key", key, from, err)
	}
	t.Setenv(spec.EnvEncrypt, keyB) // the call above unset it
	key, file = "", fileA           // config encrypt_file loses to the environment
	if from, err := spec.ResolveGossipKey(&key, &file, "", ""); err != nil || key != keyB || from != spec.EnvEncrypt || file != "" {
		t.Fatalf("env over config: key %q file %q from %q, %v", key, file, from, err)
	}
	if v, ok := os.LookupEnv(spec.EnvEncrypt); ok {
		t.Fatalf("%s is still set (%q): exec hooks and checks would inherit the key", spec.EnvEncrypt, v)
	}
	t.Setenv(spec.EnvEncrypt, "")
	key, file = "", fileA
	if from, err := spec.ResolveGossipKey(&key, &file, "", ""); err != nil || key != keyA || from != "encrypt_file" {
		t.Fatalf("config encrypt_file: key %q from %q, %v", key, from, err)
	}

	// Bad sources stop the agent with exit 1, naming the source.
	data := filepath.Join(dir, "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-encrypt", keyA, "-encrypt-file", fileA}, "both -encrypt and -encrypt-file"},
		{[]string{"-encrypt-file", filepath.Join(dir, "missing")}, "-encrypt-file"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"-cell", "a", "-data-dir", data, "-join", "127.0.0.1:7422"}, tc.args...)
		if code := run(args, &out, &errb); code != 1 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 naming %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
