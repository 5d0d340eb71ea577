package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeKeyring records calls and keeps a keyring in memory.
type fakeKeyring struct {
	calls   []string
	keys    []string
	primary string
	err     error
	addr    string
}

func (f *fakeKeyring) ListKeys(context.Context) (*KeyringList, error) {
	f.calls = append(f.calls, "list")
	return &KeyringList{Keys: slices.Clone(f.keys), Primary: f.primary, Version: 3, Node: "coord-1"}, f.err
}

func (f *fakeKeyring) InstallKey(_ context.Context, k string) error {
	f.calls = append(f.calls, "install "+k)
	f.keys = append(f.keys, k)
	return f.err
}

func (f *fakeKeyring) UseKey(_ context.Context, k string) error {
	f.calls = append(f.calls, "use "+k)
	f.primary = k
	return f.err
}

func (f *fakeKeyring) RemoveKey(_ context.Context, k string) error {
	f.calls = append(f.calls, "remove "+k)
	return f.err
}

// runKeyring runs the CLI with f as the keyring backend.
func runKeyring(t *testing.T, f *fakeKeyring, args ...string) result {
	t.Helper()
	root := newRoot("test", &app{now: func() time.Time { return testNow }})
	if err := SetKeyringDialer(root, func(_ context.Context, addr string) (KeyringClient, func(), error) {
		f.addr = addr
		return f, func() {}, nil
	}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Run(root, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

const (
	key1 = "4uhxHbB0k2mEGXW4x8YcLdSU8QpTvhTq9VrVmGM3nXw="
	key2 = "bA6J2d1vh1BaZdzD0sJ/5p0VUSQ4iPT+tHPyaDGBvXI="
)

func TestKeyringCommand(t *testing.T) {
	f := &fakeKeyring{keys: []string{key1}, primary: key1}
	base := []string{"-address", "10.0.0.1:7420", "operator", "gossip", "keyring"}

	r := runKeyring(t, f, append(base, "-install", key2)...).expect(t, ExitOK)
	if !strings.Contains(r.stdout, "Installed key") || f.addr != "10.0.0.1:7420" {
		t.Errorf("install: %q addr %q", r.stdout, f.addr)
	}
	runKeyring(t, f, append(base, "-use", key2)...).expect(t, ExitOK)
	runKeyring(t, f, append(base, "-remove", key1)...).expect(t, ExitOK)
	r = runKeyring(t, f, append(base, "-list")...).expect(t, ExitOK)
	assertLines(t, r.stdout,
		"Keyring of coord-1 (version 3):",
		"KEY                                           PRIMARY",
		key1+"  no",
		key2+"  yes")
	r = runKeyring(t, f, append(base, "-list", "-json")...).expect(t, ExitOK)
	var l KeyringList
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil || l.Primary != key2 || len(l.Keys) != 2 {
		t.Errorf("json %q: %v %v", r.stdout, l, err)
	}
	want := []string{"install " + key2, "use " + key2, "remove " + key1, "list", "list"}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}

	// The backend failing: exit 1 with its message.
	f.err = errors.New("primary key cannot be removed")
	r = runKeyring(t, f, append(base, "-remove", key2)...).expect(t, ExitError)
	if !strings.Contains(r.stderr, "removing key: primary key cannot be removed") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestKeyringCommandUsage(t *testing.T) {
	f := &fakeKeyring{}
	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"nothing", nil, "exactly one of -install, -use, -remove or -list"},
		{"two actions", []string{"-list", "-use", key1}, "exactly one of"},
		{"not base64", []string{"-install", "not a key!"}, "invalid -install key: not base64"},
		{"wrong size", []string{"-use", "c2hvcnQ="}, "invalid -use key: 5 bytes"},
		{"json without list", []string{"-remove", key1, "-json"}, "-json goes with -list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runKeyring(t, f, append([]string{"operator", "gossip", "keyring"}, tc.args...)...).expect(t, ExitUsage)
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
		})
	}
	if len(f.calls) != 0 {
		t.Errorf("usage errors reached the backend: %v", f.calls)
	}
}

// By default the command calls the coordinator's GossipKeyring RPC: an
// unreachable coordinator is an error naming it (exit 1).
func TestKeyringCommandTalksToTheCoordinator(t *testing.T) {
	r := run(t, "operator", "gossip", "keyring", "-list", "-address", "127.0.0.1:1").expect(t, ExitUnavailable)
	if !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("stderr %q", r.stderr)
	}
	if err := SetKeyringDialer(newRoot("test", &app{now: time.Now}), nil); err == nil {
		t.Error("nil dialer accepted")
	}
}
