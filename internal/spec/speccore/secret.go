package speccore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Secrets (the operator ACL token, the gossip encryption key) must be
// passable without the command line, where every local user sees them in
// ps and /proc/*/cmdline. Each secret setting therefore has a file form
// and an environment form next to the flag (as Consul's -token-file and
// CONSUL_HTTP_TOKEN), resolved by PickSecret in one documented order.

// Environment variables the server and the agent read.
const (
	// EnvEncrypt holds the gossip encryption key (base64).
	EnvEncrypt = "ROLLWAVE_ENCRYPT"
	// EnvEncryptFile names a file holding the gossip encryption key.
	EnvEncryptFile = "ROLLWAVE_ENCRYPT_FILE"
)

// ErrSecretConflict is wrapped when one level sets a secret both ways
// (-token and -token-file).
var ErrSecretConflict = errors.New("conflicting secret settings")

// maxSecretFileBytes bounds a secret file: tokens and keys are short, and
// a path pointing at something large is a mistake.
const maxSecretFileBytes = 64 << 10

// ReadSecretFile reads a secret from path: the whole file with surrounding
// whitespace (a trailing newline) removed. It must hold one non-empty line
// within 64 KiB; pipes work (/dev/stdin, a secrets manager's FIFO). Errors
// name the file, never its content.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return "", err
	} else if st.IsDir() {
		return "", fmt.Errorf("%s is a directory; expected a file holding the secret", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes; expected one line holding the secret", path, maxSecretFileBytes)
	}
	s := strings.TrimSpace(string(b))
	switch {
	case s == "":
		return "", fmt.Errorf("%s is empty; expected one line holding the secret", path)
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("%s holds more than one line; expected one line holding the secret", path)
	}
	return s, nil
}

// SecretLayer is one place a secret may be given: a value, or a file
// holding it, with the names they are given by ("-encrypt",
// "-encrypt-file"), for errors.
type SecretLayer struct {
	Value, File         string
	ValueName, FileName string
}

// PickSecret returns the secret from the first layer that sets it, and the
// name of what set it ("" when none does). A layer that sets both its value
// and its file is an error naming both; so is a file that cannot be read.
// Callers pass layers in precedence order: command-line flags, then the
// environment, then the config file.
func PickSecret(layers ...SecretLayer) (secret, from string, err error) {
	for _, l := range layers {
		switch {
		case l.Value != "" && l.File != "":
			return "", "", fmt.Errorf("%w: both %s and %s are set; give only one", ErrSecretConflict, l.ValueName, l.FileName)
		case l.File != "":
			s, err := ReadSecretFile(l.File)
			if err != nil {
				return "", "", fmt.Errorf("%s: %w", l.FileName, err)
			}
			return s, l.FileName, nil
		case l.Value != "":
			return l.Value, l.ValueName, nil
		}
	}
	return "", "", nil
}

// CheckGossipKey returns why key is not a gossip encryption key (base64 of
// 16, 24 or 32 bytes, as `rollwave keygen` prints), or nil. Commands use it
// for keys read from a file or the environment, naming where they came from.
func CheckGossipKey(key string) error {
	var ps Problems
	CheckGossipKeyField(&ps, "", key)
	if len(ps) > 0 {
		return fmt.Errorf("%s", ps[0].msg)
	}
	return nil
}

// ResolveGossipKey settles the gossip key from, in order, -encrypt or
// -encrypt-file, then ROLLWAVE_ENCRYPT or ROLLWAVE_ENCRYPT_FILE, then the
// config file's encrypt or encrypt_file (server and agent alike). It stores the key in *key, clears
// *file and returns what set it ("" for none). A file's key is checked here,
// naming the file.
func ResolveGossipKey(key, file *string, flagKey, flagFile string) (string, error) {
	k, from, err := PickSecret(
		SecretLayer{Value: flagKey, File: flagFile, ValueName: "-encrypt", FileName: "-encrypt-file"},
		SecretLayer{Value: strings.TrimSpace(os.Getenv(EnvEncrypt)), File: os.Getenv(EnvEncryptFile), ValueName: EnvEncrypt, FileName: EnvEncryptFile},
		SecretLayer{Value: *key, File: *file, ValueName: "encrypt", FileName: "encrypt_file"},
	)
	if err != nil {
		return "", err
	}
	if from != "" && from != "encrypt" {
		if err := CheckGossipKey(k); err != nil {
			return "", fmt.Errorf("gossip key from %s: %w", from, err)
		}
	}
	*key, *file = k, ""
	// Commands this process runs (exec hooks and checks) inherit its
	// environment: they must not inherit the key.
	os.Unsetenv(EnvEncrypt)
	os.Unsetenv(EnvEncryptFile)
	return from, nil
}
