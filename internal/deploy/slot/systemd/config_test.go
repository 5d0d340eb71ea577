package systemd

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		// The zero Config is valid: defaults apply.
		{name: "zero", cfg: Config{}},
		{name: "default", cfg: DefaultConfig()},
		// Hardening lines are plain settings.
		{name: "hardening ok", cfg: Config{Hardening: Hardening{"ProtectSystem=strict", "ReadWritePaths=/var/lib/rollwave"}}},
		{name: "relative unit dir", cfg: Config{UnitDir: "etc/systemd"}, wantErr: `UnitDir "etc/systemd"`},
		// A line without "=" is not a setting.
		{name: "hardening no equals", cfg: Config{Hardening: Hardening{"ProtectSystem"}}, wantErr: "Hardening[0]"},
		// A second line smuggled in with a newline.
		{name: "hardening newline", cfg: Config{Hardening: Hardening{"A=b", "PrivateTmp=yes\nExecStart=/bin/evil"}}, wantErr: "Hardening[1] contains a newline"},
		// Settings the renderer owns cannot be overridden.
		{name: "hardening owns ExecStart", cfg: Config{Hardening: Hardening{"ExecStart=/bin/evil"}}, wantErr: "ExecStart="},
		{name: "hardening owns User", cfg: Config{Hardening: Hardening{"User=root"}}, wantErr: "User="},
		// A trailing backslash would continue onto the next line.
		{name: "hardening continuation", cfg: Config{Hardening: Hardening{`ProtectHome=yes\`}}, wantErr: "backslash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, c.wantErr)
			}
			if _, err := New(c.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestDefaultHardeningIsValidAndRendered(t *testing.T) {
	if err := DefaultHardening.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := Render(baseUnit(), DefaultHardening)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range DefaultHardening {
		if !strings.Contains(string(out), "\n"+l+"\n") {
			t.Errorf("rendered unit lacks %q:\n%s", l, out)
		}
	}
}
