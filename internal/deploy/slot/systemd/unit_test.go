package systemd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// baseUnit is a valid unit each case modifies.
func baseUnit() slot.Unit {
	return slot.Unit{
		App:       "api",
		Slot:      slot.Blue,
		Version:   "2.4.0",
		Dir:       "/var/lib/rollwave/apps/api/blue",
		Port:      8081,
		ExecStart: []string{"/var/lib/rollwave/apps/api/blue/bin/api", "--listen", "127.0.0.1:8081"},
	}
}

// TestRenderGolden pins the whole file for a unit using every field.
func TestRenderGolden(t *testing.T) {
	u := baseUnit()
	u.ExecStartPre = [][]string{{"/bin/mkdir", "-p", "/var/lib/api cache"}, {"/usr/bin/check", "--pct=50%"}}
	u.ExecStart = append(u.ExecStart, "--greeting", `say "hi" to $USER`)
	u.User = "api"
	u.Environment = map[string]string{"LOG_LEVEL": "info", "DSN": "postgres://u:p@db/x?sslmode=disable", "EMPTY": "", "MOTD": "it's $5 & 10%"}
	u.WorkingDirectory = "/srv/api"
	u.Restart = "always"
	got, err := Render(u, Hardening{"ProtectSystem=strict", "NoNewPrivileges=yes"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Written by rollwave; the agent rewrites this file, do not edit.
[Unit]
Description=rollwave api blue slot (version 2.4.0)

[Service]
Type=simple
ExecStartPre=/bin/mkdir -p "/var/lib/api cache"
ExecStartPre=/usr/bin/check --pct=50%%
ExecStart=/var/lib/rollwave/apps/api/blue/bin/api --listen 127.0.0.1:8081 --greeting "say \"hi\" to $$USER"
User=api
WorkingDirectory=/srv/api
Environment="DSN=postgres://u:p@db/x?sslmode=disable"
Environment=EMPTY=
Environment=LOG_LEVEL=info
Environment="MOTD=it's $5 & 10%%"
Environment=ROLLWAVE_SLOT=blue ROLLWAVE_PORT=8081
Restart=always
RestartSec=1
ProtectSystem=strict
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
`
	if string(got) != want {
		t.Errorf("Render mismatch\n--- got\n%s\n--- want\n%s", got, want)
	}
}

func TestRenderCases(t *testing.T) {
	cases := []struct {
		name    string
		mod     func(*slot.Unit)
		want    []string // lines that must appear
		notWant []string // substrings that must not appear
		wantErr string   // substring of the error; "" = success
	}{
		// Defaults: WorkingDirectory is Dir, Restart on-failure, no User.
		{name: "defaults", mod: func(*slot.Unit) {},
			want:    []string{"WorkingDirectory=/var/lib/rollwave/apps/api/blue", "Restart=on-failure", "RestartSec=1", "Type=simple"},
			notWant: []string{"User=", "ExecStartPre="}},
		// Green slot and its port reach the unit and the environment.
		{name: "green slot", mod: func(u *slot.Unit) { u.Slot = slot.Green; u.Port = 8082 },
			want: []string{"Description=rollwave api green slot (version 2.4.0)", "Environment=ROLLWAVE_SLOT=green ROLLWAVE_PORT=8082"}},
		// Environment is written sorted by key whatever the map order.
		{name: "env sorted", mod: func(u *slot.Unit) { u.Environment = map[string]string{"Z": "1", "A": "2", "M": "3", "_U": "4"} },
			want: []string{"Environment=A=2\nEnvironment=M=3\nEnvironment=Z=1\nEnvironment=_U=4\nEnvironment=ROLLWAVE_SLOT"}},
		// "%" in the version is a literal, not a specifier.
		{name: "percent in version", mod: func(u *slot.Unit) { u.Version = "1.0%rc" },
			want: []string{"Description=rollwave api blue slot (version 1.0%%rc)"}},
		// Spaces in the working directory are literal (no quoting there).
		{name: "space in working dir", mod: func(u *slot.Unit) { u.WorkingDirectory = "/srv/my app" },
			want: []string{"WorkingDirectory=/srv/my app"}},
		// Numeric UIDs are valid users.
		{name: "numeric user", mod: func(u *slot.Unit) { u.User = "1001" }, want: []string{"User=1001"}},

		// Newlines would inject settings; the error names the field.
		{name: "newline in argument", mod: func(u *slot.Unit) { u.ExecStart = []string{"/bin/x", "a\nExecStartPre=/bin/evil"} },
			wantErr: "ExecStart[1] contains a newline"},
		{name: "newline in pre command", mod: func(u *slot.Unit) { u.ExecStartPre = [][]string{{"/bin/ok"}, {"/bin/x", "\n"}} },
			wantErr: "ExecStartPre[1][1] contains a newline"},
		{name: "NUL in env value", mod: func(u *slot.Unit) { u.Environment = map[string]string{"K": "a\x00b"} },
			wantErr: "Environment[K] contains a NUL byte"},
		{name: "newline in version", mod: func(u *slot.Unit) { u.Version = "1\n[Service]" },
			wantErr: "Version contains a newline"},
		{name: "newline in dir", mod: func(u *slot.Unit) { u.Dir = "/a\n/b" }, wantErr: "Dir contains a newline"},
		{name: "invalid UTF-8", mod: func(u *slot.Unit) { u.ExecStart = []string{"/bin/x", "\xff"} },
			wantErr: "ExecStart[1] is not valid UTF-8"},
		// Missing or malformed fields.
		{name: "no command", mod: func(u *slot.Unit) { u.ExecStart = nil }, wantErr: "ExecStart: no command"},
		{name: "empty executable", mod: func(u *slot.Unit) { u.ExecStart = []string{""} }, wantErr: "ExecStart: no command"},
		{name: "bad slot", mod: func(u *slot.Unit) { u.Slot = "red" }, wantErr: `slot "red"`},
		{name: "app with slash", mod: func(u *slot.Unit) { u.App = "../etc" }, wantErr: `app "../etc"`},
		{name: "empty app", mod: func(u *slot.Unit) { u.App = "" }, wantErr: `app ""`},
		{name: "port zero", mod: func(u *slot.Unit) { u.Port = 0 }, wantErr: "Port 0"},
		{name: "relative dir", mod: func(u *slot.Unit) { u.Dir = "var/lib/x" }, wantErr: `Dir "var/lib/x"`},
		{name: "unclean working dir", mod: func(u *slot.Unit) { u.WorkingDirectory = "/srv/../etc" }, wantErr: "WorkingDirectory"},
		{name: "working dir trailing space", mod: func(u *slot.Unit) { u.WorkingDirectory = "/srv/x " }, wantErr: "WorkingDirectory"},
		{name: "bad restart", mod: func(u *slot.Unit) { u.Restart = "sometimes" }, wantErr: `Restart "sometimes"`},
		{name: "user with space", mod: func(u *slot.Unit) { u.User = "api user" }, wantErr: `User "api user"`},
		{name: "bad env key", mod: func(u *slot.Unit) { u.Environment = map[string]string{"1X": "v"} }, wantErr: `Environment key "1X"`},
		{name: "env key with =", mod: func(u *slot.Unit) { u.Environment = map[string]string{"A=B": "v"} }, wantErr: `Environment key "A=B"`},
		// The slot variables are rollwave's; a unit may not override them.
		{name: "reserved env key", mod: func(u *slot.Unit) { u.Environment = map[string]string{EnvPort: "1"} }, wantErr: "ROLLWAVE_PORT is reserved"},
		{name: "control char in version", mod: func(u *slot.Unit) { u.Version = "1\r" }, wantErr: "Version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := baseUnit()
			c.mod(&u)
			got, err := Render(u, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !bytes.Contains(got, []byte(w)) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, w := range c.notWant {
				if bytes.Contains(got, []byte(w)) {
					t.Errorf("unexpected %q in\n%s", w, got)
				}
			}
		})
	}
}

// TestRenderDeterministic renders a unit with many environment entries
// repeatedly: map iteration order must not leak into the file (Install
// would see a change and trigger a daemon-reload every time).
func TestRenderDeterministic(t *testing.T) {
	u := baseUnit()
	u.Environment = map[string]string{}
	for _, k := range strings.Fields("A B C D E F G H I J K L M N O P Q R S T") {
		u.Environment[k] = strings.ToLower(k)
	}
	first, err := Render(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, _ := Render(u, nil)
		if !bytes.Equal(first, again) {
			t.Fatalf("output differs between renders:\n%s\n---\n%s", first, again)
		}
	}
}

// TestRenderExecRoundTrip reads the rendered Exec lines back with the
// model of systemd's parser.
func TestRenderExecRoundTrip(t *testing.T) {
	u := baseUnit()
	u.ExecStart = []string{"/bin/sh", "-c", `echo "$1" 'x' \ 100% ; exit`, "a b", ""}
	got, err := Render(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(got), "\n") {
		v, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		argv, err := parseCommand(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(argv, "\x00") != strings.Join(u.ExecStart, "\x00") {
			t.Fatalf("read back %q, want %q", argv, u.ExecStart)
		}
		return
	}
	t.Fatal("no ExecStart line")
}

// The unit the slot manager renders for a release is accepted by this
// driver as it is (the manager sets ROLLWAVE_SLOT and ROLLWAVE_PORT for
// every driver), and each variable is written once.
func TestRenderAcceptsTheSlotManagersUnit(t *testing.T) {
	spec := &rollwavev1.ReleaseSpec{
		App: "demo", Version: "2.0.0",
		Unit:  &rollwavev1.UnitSpec{ExecStart: "{{slot_dir}}/bin/demo-app -listen 127.0.0.1:{{port}}", Environment: map[string]string{"LOG_LEVEL": "info"}},
		Slots: &rollwavev1.SlotsSpec{BluePort: 8081, GreenPort: 8082},
	}
	u, err := slot.RenderUnit(spec, "demo", slot.Green, "2.0.0", "/var/lib/rollwave-agent/apps/demo/green", 8082)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Render(u, nil)
	if err != nil {
		t.Fatalf("the driver refused the slot manager's unit: %v", err)
	}
	if n := strings.Count(string(out), EnvPort+"="); n != 1 {
		t.Fatalf("%s written %d times:\n%s", EnvPort, n, out)
	}
	if !strings.Contains(string(out), `ROLLWAVE_PORT=8082`) || !strings.Contains(string(out), "LOG_LEVEL=info") {
		t.Fatalf("unexpected unit:\n%s", out)
	}
}

// A unit's own hardening lines replace the host's lines for the same keys
// and add new ones; the rest of the host's lines stay.
func TestRenderMergesUnitHardening(t *testing.T) {
	u := baseUnit()
	u.Hardening = []string{"ProtectSystem=strict", "PrivateDevices=yes"}
	out, err := Render(u, Hardening{"NoNewPrivileges=yes", "ProtectSystem=full"})
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nPrivateDevices=yes\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "ProtectSystem=full") {
		t.Errorf("the host line for an overridden key stayed:\n%s", text)
	}
	u.Hardening = []string{"ExecStart=/bin/sh"}
	if _, err := Render(u, nil); err == nil {
		t.Fatal("a unit hardening line setting ExecStart was accepted")
	}
}

// TestSecurityRenderRefusesExecPrefix (issue 11 item 3): systemd unquotes
// an Exec*= line's first word before it looks for the "+", "!", "@", "-",
// ":" and "|" prefixes, so quoting ExecStart="+/bin/sh" still runs
// /bin/sh as root, outside the sandbox. Render refuses the unit instead,
// naming the field.
func TestSecurityRenderRefusesExecPrefix(t *testing.T) {
	for _, exe := range []string{"+/bin/sh", "!/bin/sh", "!!/bin/sh", "@/bin/sh", "-/bin/sh", ":/bin/sh", "|/bin/sh", "+!/bin/sh"} {
		u := baseUnit()
		u.User = "nobody"
		u.ExecStart = []string{exe, "-c", "id"}
		if out, err := Render(u, DefaultHardening); err == nil || !strings.Contains(err.Error(), "ExecStart: executable") {
			t.Errorf("ExecStart %q: want refused naming ExecStart, got %v\n%s", exe, err, out)
		}
		u = baseUnit()
		u.ExecStartPre = [][]string{{"/bin/true"}, {exe}}
		if _, err := Render(u, DefaultHardening); err == nil || !strings.Contains(err.Error(), "ExecStartPre[1]: executable") {
			t.Errorf("ExecStartPre %q: want refused naming ExecStartPre[1], got %v", exe, err)
		}
	}
}
