// Package demoapp builds the demo HTTP service (examples/demo-app) and
// packages release artifacts of it, for tests and the demo.
package demoapp

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// Build compiles examples/demo-app into dir and returns the binary's path.
// repoRoot is the module root.
func Build(repoRoot, dir string) (string, error) {
	out := filepath.Join(dir, "demo-app")
	cmd := exec.Command("go", "build", "-o", out, "./examples/demo-app")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build demo-app: %v\n%s", err, b)
	}
	return out, nil
}

// RunTests is a TestMain body for packages whose tests run the demo app:
// it builds the app into a temporary directory, sets *bin to it, runs the
// tests, removes the directory and exits with the tests' code. When the
// tests passed, each afterPass check runs too (goleak.Find); an error
// fails the run.
func RunTests(m *testing.M, bin *string, afterPass ...func() error) {
	dir, err := os.MkdirTemp("", "rollwave-demoapp-test")
	if err != nil {
		panic(err)
	}
	if *bin, err = Build(RepoRoot(), dir); err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		for _, check := range afterPass {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// RepoRoot finds the module root from this source file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Artifact is a packaged release of the demo app.
type Artifact struct {
	Path   string
	URL    string // file://
	SHA256 string
}

// Package writes demo-app-<version>.tar.gz into dir: bin/demo-app,
// config/version and config/healthy ("yes" or "no").
func Package(bin, dir, version string, healthy bool) (Artifact, error) {
	h := "yes"
	if !healthy {
		h = "no"
	}
	return PackageWith(bin, dir, version, h)
}

// PackageWith is Package with the raw config/healthy setting: "yes", "no",
// or a duration after which the app turns unhealthy.
func PackageWith(bin, dir, version, h string) (Artifact, error) {
	return PackageConfig(bin, dir, version, map[string]string{"healthy": h})
}

// PackageConfig writes demo-app-<version>.tar.gz into dir with
// config/version and a config/<name> file per entry of config (healthy,
// error_rate, delay: see examples/demo-app).
func PackageConfig(bin, dir, version string, config map[string]string) (Artifact, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return Artifact{}, err
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, mode int64, body []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, dirName := range []string{"bin/", "config/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dirName, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return Artifact{}, err
		}
	}
	if err := add("bin/demo-app", 0o755, exe); err != nil {
		return Artifact{}, err
	}
	if err := add("config/version", 0o644, []byte(version+"\n")); err != nil {
		return Artifact{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(config)) {
		if err := add("config/"+name, 0o644, []byte(config[name]+"\n")); err != nil {
			return Artifact{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Artifact{}, err
	}
	if err := gz.Close(); err != nil {
		return Artifact{}, err
	}
	path := filepath.Join(dir, fmt.Sprintf("demo-app-%s.tar.gz", version))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return Artifact{}, err
	}
	sum := sha256.Sum256(buf.Bytes())
	abs, _ := filepath.Abs(path)
	return Artifact{Path: abs, URL: "file://" + abs, SHA256: hex.EncodeToString(sum[:])}, nil
}

// Spec returns an HCL release spec for the demo app.
func Spec(name, version string, a Artifact, bluePort, greenPort, listenPort int, bake string) string {
	return fmt.Sprintf(`release %q {
  app     = "demo"
  version = %q

  artifact {
    url    = %q
    sha256 = %q
  }

  unit {
    exec_start = "{{slot_dir}}/bin/demo-app -dir {{slot_dir}} -listen 127.0.0.1:{{port}}"
  }

  slots {
    blue_port  = %d
    green_port = %d
    keep_old   = "hot"
  }

  traffic {
    mode   = "proxy"
    listen = "127.0.0.1:%d"
  }

  health {
    check "http" {
      url      = "http://127.0.0.1:{{port}}/healthz"
      interval = "200ms"
      timeout  = "150ms"
    }
    min_healthy_time = "1s"
    healthy_deadline = "10s"
  }

  bake {
    first = %q
    decay = 0.5
    min   = "1s"
  }

  rollback {
    isolation_timeout = "3s"
  }
}
`, name, version, a.URL, a.SHA256, bluePort, greenPort, listenPort, bake)
}
