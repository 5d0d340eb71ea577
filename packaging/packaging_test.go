package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blakesmith/ar"

	"github.com/rollwave/rollwave/internal/spec"
)

func TestPackageVersion(t *testing.T) {
	cases := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},                                           // release tag
		{"1.2.3", "1.2.3"},                                            // VERSION= override
		{"v1.2.3-rc.1", "1.2.3~rc.1"},                                 // pre-release sorts before 1.2.3
		{"v1.2.3-rc1-4-gabc1234", "1.2.3~rc1+4.gabc1234"},             // commits after a pre-release
		{"v0.1.0-5-gabc1234", "0.1.0+5.gabc1234"},                     // commits after a tag
		{"v0.1.0-5-gabc1234-dirty", "0.1.0+5.gabc1234.dirty"},         // ... with local changes
		{"v0.1.0-dirty", "0.1.0+dirty"},                               // tag with local changes
		{"3f54232", "0.0.0~git3f54232"},                               // no tag yet
		{"3f54232-dirty", "0.0.0~git3f54232.dirty"},                   // no tag, local changes
		{"dev", "0.0.0~dev"},                                          // Makefile fallback without git
		{"v2.0.0-beta_2", "2.0.0~beta.2"},                             // '_' is not valid in dpkg versions
		{" v1.0.0\n", "1.0.0"},                                        // shell output with a newline
		{"v10.20.30-100-g0123456789ab", "10.20.30+100.g0123456789ab"}, // long hash
	}
	for _, c := range cases {
		got, err := PackageVersion(c.in)
		if err != nil || got != c.want {
			t.Errorf("PackageVersion(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-dirty", "v1.2.3-rc/1", "release 1", "v1..2-x"} {
		if got, err := PackageVersion(bad); err == nil {
			t.Errorf("PackageVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// TestDefaultConfigsParse: the shipped configs are valid for the binaries
// and agree with the units (data dirs the sandbox allows).
func TestDefaultConfigsParse(t *testing.T) {
	src, err := os.ReadFile("config/agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ac, err := spec.ParseAgentConfig("agent.hcl", src)
	if err != nil {
		t.Fatalf("config/agent.hcl: %v", err)
	}
	if ac.DataDir != "/var/lib/rollwave-agent" || ac.UnitDriver != spec.DriverSystemd || ac.Cell == "" || len(ac.Join) == 0 {
		t.Errorf("agent.hcl: data_dir %q unit_driver %q cell %q join %v", ac.DataDir, ac.UnitDriver, ac.Cell, ac.Join)
	}
	src, err = os.ReadFile("config/server.hcl")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := spec.ParseServerConfig("server.hcl", src)
	if err != nil {
		t.Fatalf("config/server.hcl: %v", err)
	}
	if sc.DataDir != "/var/lib/rollwave" || sc.Dev {
		t.Errorf("server.hcl: data_dir %q dev %v; the unit only lets the server write /var/lib/rollwave", sc.DataDir, sc.Dev)
	}
}

func TestScriptsSyntax(t *testing.T) {
	scripts, err := filepath.Glob("scripts/*/*/*")
	if err != nil || len(scripts) != 14 {
		t.Fatalf("found %d scripts (%v), want 14", len(scripts), err)
	}
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if !strings.HasPrefix(text, "#!/bin/sh\n") || !strings.Contains(text, "\nset -e\n") {
			t.Errorf("%s: want #!/bin/sh and set -e", s)
		}
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
		// Every call that needs a running systemd is guarded, so the
		// scripts work in chroots and image builds.
		for i, line := range strings.Split(text, "\n") {
			l := strings.TrimSpace(line)
			for _, verb := range []string{"start", "stop", "try-restart", "restart", "daemon-reload"} {
				if strings.HasPrefix(l, "systemctl "+verb+" ") || l == "systemctl "+verb+" || true" {
					if !guarded(strings.Split(text, "\n")[:i]) {
						t.Errorf("%s:%d: %q is not inside `if [ -d /run/systemd/system ]`", s, i+1, l)
					}
				}
			}
		}
	}
}

// guarded reports whether an if or elif enclosing the line after before
// tests for a running systemd.
func guarded(before []string) bool {
	depth := 0
	for i := len(before) - 1; i >= 0; i-- {
		l := strings.TrimSpace(before[i])
		switch {
		case l == "fi":
			depth++
		case strings.HasPrefix(l, "if ") || strings.HasPrefix(l, "elif "):
			if depth == 0 && strings.Contains(l, "/run/systemd/system") {
				return true
			}
			if depth > 0 && strings.HasPrefix(l, "if ") {
				depth--
			}
		}
	}
	return false
}

func TestUnits(t *testing.T) {
	want := map[string][]string{
		"systemd/rollwave-agent.service": {
			"Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=always", "RestartSec=2",
			"KillMode=process", "LimitNOFILE=65536",
			"ExecStart=/usr/bin/rollwave-agent -config /etc/rollwave/agent.hcl",
			"WantedBy=multi-user.target",
		},
		"systemd/rollwave.service": {
			"User=rollwave", "Group=rollwave", "Restart=on-failure", "TimeoutStopSec=30",
			"ProtectSystem=strict", "ReadWritePaths=/var/lib/rollwave", "NoNewPrivileges=yes",
			"LimitNOFILE=65536", "ExecStart=/usr/bin/rollwave server -config /etc/rollwave/server.hcl",
			"WantedBy=multi-user.target",
		},
	}
	for file, lines := range want {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		have := strings.Split(string(b), "\n")
		for _, l := range lines {
			if !slices.Contains(have, l) {
				t.Errorf("%s: missing %q", file, l)
			}
		}
	}
	// The agent must be able to write unit files: no read-only /etc.
	b, _ := os.ReadFile("systemd/rollwave-agent.service")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "ProtectSystem=") {
			t.Errorf("rollwave-agent.service: %q would make /etc/systemd/system read-only", l)
		}
	}
}

// TestBuild builds all four packages from small fake binaries and checks
// their contents.
func TestBuild(t *testing.T) {
	bin, out := t.TempDir(), t.TempDir()
	for _, name := range []string{"rollwave", "rollwave-agent"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	docs := t.TempDir()
	docFiles := map[string]string{ // as `rollwave gen-docs` writes them → where the package installs them
		"man1/rollwave.1":               "/usr/share/man/man1/rollwave.1",
		"man1/rollwave-release-start.1": "/usr/share/man/man1/rollwave-release-start.1",
		"completion/rollwave.bash":      "/usr/share/bash-completion/completions/rollwave",
		"completion/_rollwave":          "/usr/share/zsh/vendor-completions/_rollwave",
		"completion/rollwave.fish":      "/usr/share/fish/vendor_completions.d/rollwave.fish",
	}
	for src := range docFiles {
		p := filepath.Join(docs, src)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := Build(Options{Dir: ".", BinDir: bin, DocsDir: docs, OutDir: out, Version: "0.1.0+5.gabc1234", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	wantNames := []string{
		"rollwave_0.1.0+5.gabc1234_amd64.deb",
		"rollwave-0.1.0+5.gabc1234-1.x86_64.rpm",
		"rollwave-agent_0.1.0+5.gabc1234_amd64.deb",
		"rollwave-agent-0.1.0+5.gabc1234-1.x86_64.rpm",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("built %v, want %v", names, wantNames)
	}

	pkgs := []struct {
		name, bin, unit, config, dataDir string
		dataMode                         os.FileMode
		dataOwner                        string
		scripts                          []string
	}{
		{"rollwave", "/usr/bin/rollwave", "/usr/lib/systemd/system/rollwave.service", "/etc/rollwave/server.hcl",
			"/var/lib/rollwave", 0o750, "rollwave", []string{"preinst", "postinst", "prerm", "postrm"}},
		{"rollwave-agent", "/usr/bin/rollwave-agent", "/usr/lib/systemd/system/rollwave-agent.service", "/etc/rollwave/agent.hcl",
			"/var/lib/rollwave-agent", 0o700, "root", []string{"postinst", "prerm", "postrm"}},
	}
	for i, p := range pkgs {
		control, data := readDeb(t, paths[2*i])
		if got := strings.TrimSpace(string(control["conffiles"])); got != p.config {
			t.Errorf("%s.deb conffiles = %q, want %q", p.name, got, p.config)
		}
		for _, s := range p.scripts {
			if !bytes.HasPrefix(control[s], []byte("#!/bin/sh")) {
				t.Errorf("%s.deb: no %s script", p.name, s)
			}
		}
		ctl := string(control["control"])
		for _, f := range []string{"Package: " + p.name, "Version: 0.1.0+5.gabc1234", "Architecture: amd64", "Section: admin", "Homepage: "} {
			if !strings.Contains(ctl, f) {
				t.Errorf("%s.deb control lacks %q:\n%s", p.name, f, ctl)
			}
		}
		for path, mode := range map[string]os.FileMode{p.bin: 0o755, p.unit: 0o644, p.config: 0o640} {
			h, ok := data["."+path]
			if !ok || h.FileInfo().Mode().Perm() != mode || h.Typeflag != tar.TypeReg {
				t.Errorf("%s.deb: %s missing or not a 0%o file (%+v)", p.name, path, mode, h)
			}
		}
		if p.name == "rollwave" {
			for _, dst := range docFiles {
				if h, ok := data["."+dst]; !ok || h.FileInfo().Mode().Perm() != 0o644 || h.Typeflag != tar.TypeReg {
					t.Errorf("%s.deb: %s missing or not a 0644 file (%+v)", p.name, dst, h)
				}
			}
		}
		if h, ok := data["."+p.dataDir+"/"]; !ok || h.FileInfo().Mode().Perm() != p.dataMode || h.Uname != p.dataOwner {
			t.Errorf("%s.deb: %s missing or not 0%o %s (%+v)", p.name, p.dataDir, p.dataMode, p.dataOwner, h)
		}

		rpmPath := paths[2*i+1]
		if _, err := exec.LookPath("rpm"); err != nil {
			t.Logf("rpm not installed; not checking %s", filepath.Base(rpmPath))
			continue
		}
		q, err := exec.Command("rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}\n]", rpmPath).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm -qp %s: %v\n%s", rpmPath, err, q)
		}
		for _, l := range []string{
			p.bin + "  -rwxr-xr-x root",
			p.unit + "  -rw-r--r-- root",
			p.config + " cn -rw-r----- root",
			p.dataDir + "  " + (os.ModeDir | p.dataMode).String() + " " + p.dataOwner,
		} {
			if !slices.Contains(strings.Split(string(q), "\n"), l) {
				t.Errorf("%s: no line %q in\n%s", filepath.Base(rpmPath), l, q)
			}
		}
		if p.name != "rollwave" {
			continue
		}
		for _, l := range []string{
			"/usr/share/man/man1/rollwave-release-start.1  -rw-r--r-- root",
			"/usr/share/bash-completion/completions/rollwave  -rw-r--r-- root",
			"/usr/share/zsh/site-functions/_rollwave  -rw-r--r-- root",
			"/usr/share/fish/vendor_completions.d/rollwave.fish  -rw-r--r-- root",
		} {
			if !slices.Contains(strings.Split(string(q), "\n"), l) {
				t.Errorf("%s: no line %q in\n%s", filepath.Base(rpmPath), l, q)
			}
		}
		scripts, err := exec.Command("rpm", "-qp", "--scripts", rpmPath).CombinedOutput()
		if err != nil || !strings.Contains(string(scripts), "preuninstall scriptlet") || !strings.Contains(string(scripts), "postuninstall scriptlet") {
			t.Errorf("rpm -qp --scripts %s: %v\n%s", rpmPath, err, scripts)
		}
	}
}

// readDeb returns the control files by name and the data.tar headers by
// path.
func readDeb(t *testing.T, path string) (map[string][]byte, map[string]*tar.Header) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	control, data := map[string][]byte{}, map[string]*tar.Header{}
	r := ar.NewReader(f)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name != "control.tar.gz" && name != "data.tar.gz" {
			continue
		}
		gz, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("%s %s: %v", path, name, err)
		}
		tr := tar.NewReader(gz)
		for {
			th, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s %s: %v", path, name, err)
			}
			if name == "data.tar.gz" {
				data[th.Name] = th
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			control[strings.TrimPrefix(th.Name, "./")] = b
		}
	}
	if len(control) == 0 || len(data) == 0 {
		t.Fatalf("%s: no control.tar.gz or data.tar.gz", path)
	}
	return control, data
}
