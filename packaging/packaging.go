// Package packaging builds the rollwave deb and rpm packages with nfpm.
//
// The package definitions are the nfpm YAML files next to this file
// (rollwave.yaml, rollwave-agent.yaml); Build expands ${VERSION}, ${ARCH},
// ${BINDIR}, ${DOCDIR} and ${MAINTAINER} in them, resolves relative paths against the
// packaging directory and writes one package per (definition, format).
package packaging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// Definitions are the nfpm configs Build packages, relative to the
// packaging directory.
var Definitions = []string{"rollwave.yaml", "rollwave-agent.yaml"}

// Formats are the package formats Build writes.
var Formats = []string{"deb", "rpm"}

// DefaultMaintainer fills ${MAINTAINER} when Options.Maintainer is empty.
const DefaultMaintainer = "rollwave maintainers <rollwave@example.com>"

// Options say what Build packages and where.
type Options struct {
	// Dir is the packaging directory holding the YAML definitions, units,
	// configs and scripts.
	Dir string
	// BinDir holds the built rollwave and rollwave-agent binaries.
	BinDir string
	// DocsDir holds what `rollwave gen-docs` writes for the binary in
	// BinDir: man1/*.1 and completion/{rollwave.bash,_rollwave,rollwave.fish}.
	DocsDir string
	// OutDir receives the packages; created if missing.
	OutDir string
	// Version is a package version as returned by PackageVersion.
	Version string
	// Arch is a Go architecture name (amd64, arm64); nfpm maps it to
	// x86_64/aarch64 for rpm.
	Arch string
	// Maintainer is the Maintainer/Packager field; default
	// DefaultMaintainer.
	Maintainer string
}

// Build writes every definition in every format to o.OutDir and returns
// the paths written.
func Build(o Options) ([]string, error) {
	if o.Version == "" || o.Arch == "" || o.Dir == "" || o.BinDir == "" || o.DocsDir == "" || o.OutDir == "" {
		return nil, errors.New("packaging: Dir, BinDir, DocsDir, OutDir, Version and Arch are all required")
	}
	if !validVersion.MatchString(o.Version) {
		return nil, fmt.Errorf("packaging: version %q is not a package version; convert it with PackageVersion", o.Version)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(o.BinDir)
	if err != nil {
		return nil, err
	}
	docs, err := filepath.Abs(o.DocsDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	env := map[string]string{
		"VERSION":    o.Version,
		"ARCH":       o.Arch,
		"BINDIR":     bin,
		"DOCDIR":     docs,
		"MAINTAINER": o.Maintainer,
	}
	if env["MAINTAINER"] == "" {
		env["MAINTAINER"] = DefaultMaintainer
	}
	var out []string
	for _, def := range Definitions {
		cfg, err := nfpm.ParseFileWithEnvMapping(filepath.Join(dir, def), func(k string) string { return env[k] })
		if err != nil {
			return out, fmt.Errorf("packaging: %s: %w", def, err)
		}
		resolvePaths(&cfg, dir)
		if err := cfg.Validate(); err != nil {
			return out, fmt.Errorf("packaging: %s: %w", def, err)
		}
		for _, format := range Formats {
			path, err := buildOne(&cfg, format, dir, o.OutDir)
			if err != nil {
				return out, fmt.Errorf("packaging: %s (%s): %w", def, format, err)
			}
			out = append(out, path)
		}
	}
	return out, nil
}

// resolvePaths makes the relative sources and script paths of cfg and its
// overrides relative to dir instead of the working directory.
func resolvePaths(cfg *nfpm.Config, dir string) {
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	fix := func(o *nfpm.Overridables) {
		for _, c := range o.Contents {
			if c.Type != files.TypeDir && c.Type != files.TypeSymlink {
				c.Source = resolve(c.Source)
			}
		}
		s := &o.Scripts
		s.PreInstall, s.PostInstall = resolve(s.PreInstall), resolve(s.PostInstall)
		s.PreRemove, s.PostRemove = resolve(s.PreRemove), resolve(s.PostRemove)
	}
	fix(&cfg.Overridables)
	for _, o := range cfg.Overrides {
		fix(o)
	}
}

func buildOne(cfg *nfpm.Config, format, dir, outDir string) (string, error) {
	info, err := cfg.Get(format)
	if err != nil {
		return "", err
	}
	// Release: rpm gets "-1" (its default); the deb version carries no
	// Debian revision, so file names are name_<version>_<arch>.deb.
	info.Release = ""
	info = nfpm.WithDefaults(info)
	pkger, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	info.Target = filepath.Join(outDir, pkger.ConventionalFileName(info))
	f, err := os.Create(info.Target)
	if err != nil {
		return "", err
	}
	if err := pkger.Package(info, f); err != nil {
		f.Close()
		os.Remove(info.Target)
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return info.Target, nil
}

// validVersion is what both dpkg (upstream version without a revision)
// and rpm (no '-') accept.
var validVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

var (
	describeRe = regexp.MustCompile(`^(.+)-([0-9]+)-g([0-9a-f]+)$`)
	hashRe     = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	releaseRe  = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
	tokenRe    = regexp.MustCompile(`^[A-Za-z0-9.]+$`)
)

// PackageVersion turns `git describe --tags --always --dirty` output (or
// a version given by hand) into a version that dpkg and rpm both accept
// and order sensibly:
//
//	v1.2.3                  -> 1.2.3
//	v1.2.3-rc.1             -> 1.2.3~rc.1         (before 1.2.3)
//	v1.2.3-5-gabc1234       -> 1.2.3+5.gabc1234   (after 1.2.3)
//	v1.2.3-5-gabc1234-dirty -> 1.2.3+5.gabc1234.dirty
//	v1.2.3-dirty            -> 1.2.3+dirty
//	3f54232 (no tag yet)    -> 0.0.0~git3f54232
//	3f54232-dirty           -> 0.0.0~git3f54232.dirty
//	dev                     -> 0.0.0~dev
//
// A leading "v" is dropped, a pre-release's '-' and '_' become '.', '~'
// sorts before the release and '+' after it in both dpkg and rpm.
func PackageVersion(describe string) (string, error) {
	s := strings.TrimSpace(describe)
	dirty := strings.HasSuffix(s, "-dirty")
	s = strings.TrimSuffix(s, "-dirty")
	var v string
	var build []string
	switch {
	case s == "":
		return "", errors.New("empty version")
	case hashRe.MatchString(s) && !releaseRe.MatchString(s):
		v = "0.0.0~git" + s
	default:
		if m := describeRe.FindStringSubmatch(s); m != nil {
			s, build = m[1], []string{m[2], "g" + m[3]}
		}
		s = strings.TrimPrefix(s, "v")
		rel, pre, _ := strings.Cut(s, "-")
		switch {
		case releaseRe.MatchString(rel):
			v = rel
			if pre != "" {
				pre = strings.NewReplacer("-", ".", "_", ".").Replace(pre)
				if !tokenRe.MatchString(pre) {
					return "", fmt.Errorf("version %q: pre-release %q may hold only letters, digits, '.', '-' and '_'", describe, pre)
				}
				v += "~" + pre
			}
		case pre == "" && build == nil && tokenRe.MatchString(rel):
			v = "0.0.0~" + rel
		default:
			return "", fmt.Errorf("version %q: expected a git describe output such as v1.2.3-4-gabc1234 or a version such as 1.2.3", describe)
		}
	}
	if dirty {
		if build == nil && strings.HasPrefix(v, "0.0.0~") {
			v += ".dirty"
		} else {
			build = append(build, "dirty")
		}
	}
	if len(build) > 0 {
		v += "+" + strings.Join(build, ".")
	}
	if !validVersion.MatchString(v) {
		return "", fmt.Errorf("version %q became %q, which dpkg or rpm would reject", describe, v)
	}
	return v, nil
}
