package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseServerConfigNotify(t *testing.T) {
	src := `dev = true
ui_url = "https://rollwave.example.com"
notify "ops" {
  url         = "https://hooks.example.com/rollwave"
  events      = ["gate.failed", "release.*", "host.reverted_isolated"]
  secret_file = "/etc/rollwave/ops.secret"
}
notify "chat" {
  type    = "slack"
  url     = "https://hooks.slack.com/services/T0/B0/x"
  events  = ["*"]
  timeout = "3s"
}
`
	c, err := ParseServerConfig("server.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notify) != 2 || c.UIURL != "https://rollwave.example.com" {
		t.Fatalf("notify = %+v, ui_url %q", c.Notify, c.UIURL)
	}
	ops, chat := c.Notify[0], c.Notify[1]
	if ops.Name != "ops" || ops.Type != NotifyWebhook || ops.Timeout != DefaultNotifyTimeout || len(ops.Events) != 3 || ops.SecretFile != "/etc/rollwave/ops.secret" {
		t.Errorf("ops = %+v", ops)
	}
	if chat.Type != NotifySlack || chat.Timeout != 3*time.Second || chat.Events[0] != "*" {
		t.Errorf("chat = %+v", chat)
	}
}

func TestParseServerConfigNotifyInvalid(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		// An event no writer writes, with a suggestion.
		{"unknown event", `url = "https://h/x"` + "\n" + `events = ["gate.faild"]`,
			[]string{`notify[0].events[0]: "gate.faild" is not an event the coordinator writes (did you mean "gate.failed"?)`}},
		// A wildcard over a family that does not exist.
		{"unknown family", `url = "https://h/x"` + "\n" + `events = ["deploy.*"]`,
			[]string{`notify[0].events[0]: "deploy.*" names no event family; expected one of acl, chain, freeze, gate, host,`}},
		{"no events", `url = "https://h/x"`, []string{`notify[0].events: must list at least one event`}},
		{"no url", `events = ["*"]`, []string{`notify[0]: missing required field "url"`}},
		{"ftp url", `url = "ftp://h/x"` + "\n" + `events = ["*"]`, []string{`notify[0].url: must be an http:// or https:// URL with a host, got "ftp://h/x"`}},
		// Credentials in the URL are refused and not echoed.
		{"credentials", `url = "https://u:hunter2@h/x"` + "\n" + `events = ["*"]`, []string{`notify[0].url: must not hold credentials`}},
		{"type", `type = "email"` + "\n" + `url = "https://h/x"` + "\n" + `events = ["*"]`, []string{`notify[0].type: must be one of webhook, slack, got "email"`}},
		{"relative secret", `url = "https://h/x"` + "\n" + `events = ["*"]` + "\n" + `secret_file = "s.key"`, []string{`notify[0].secret_file: must be an absolute path, got "s.key"`}},
		{"timeout", `url = "https://h/x"` + "\n" + `events = ["*"]` + "\n" + `timeout = "5m"`, []string{`notify[0].timeout: must be from 1s to 2m0s, got 5m0s`}},
		{"unknown field", `url = "https://h/x"` + "\n" + `events = ["*"]` + "\n" + `secret = "x"`, []string{`notify[0]: unknown field "secret"; expected one of type, url, events, secret_file, timeout`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "dev = true\nnotify \"ops\" {\n" + tc.body + "\n}\n"
			_, err := ParseServerConfig("server.hcl", []byte(src))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes the URL's password: %v", err)
			}
		})
	}
	// Two targets of one name; a bad ui_url.
	src := "dev = true\nui_url = \"rollwave.example.com\"\nnotify \"a\" {\nurl = \"https://h/x\"\nevents = [\"*\"]\n}\nnotify \"a\" {\nurl = \"https://h/y\"\nevents = [\"*\"]\n}\n"
	_, err := ParseServerConfig("server.hcl", []byte(src))
	for _, w := range []string{`notify[1].name: target "a" is defined twice`, `ui_url: must be an http:// or https:// URL`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %s", err, w)
		}
	}
}

func TestSecretFileMode(t *testing.T) {
	dir := t.TempDir()
	tight, loose := filepath.Join(dir, "tight"), filepath.Join(dir, "loose")
	if err := os.WriteFile(tight, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loose, []byte("k\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w := SecretFileMode(tight); w != "" {
		t.Errorf("0600 file warned: %s", w)
	}
	if w := SecretFileMode(loose); !strings.Contains(w, "mode 0644") || !strings.Contains(w, "chmod 600") {
		t.Errorf("0644 file: %q", w)
	}
}
