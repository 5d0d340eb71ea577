// Command mkpkg builds the rollwave deb and rpm packages from the nfpm
// definitions in packaging/ and the binaries in bin/. `make packages` runs
// it after `make build`.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/rollwave/rollwave/packaging"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("mkpkg", flag.ExitOnError)
	var (
		version = fs.String("version", "", "git describe output or a version; converted with packaging.PackageVersion (required)")
		arch    = fs.String("arch", envOr("GOARCH", runtime.GOARCH), "Go architecture of the binaries")
		dir     = fs.String("dir", "packaging", "packaging directory (nfpm YAML, units, configs, scripts)")
		binDir  = fs.String("bin", "bin", "directory holding rollwave and rollwave-agent")
		docsDir = fs.String("docs", "", "man pages and completions from `rollwave gen-docs` (default: run BIN/rollwave gen-docs into a temporary directory)")
		outDir  = fs.String("out", "dist", "output directory")
		maint   = fs.String("maintainer", os.Getenv("MAINTAINER"), "Maintainer/Packager field (default "+packaging.DefaultMaintainer+")")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mkpkg -version $(git describe --tags --always --dirty) [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *version == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	v, err := packaging.PackageVersion(*version)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	if *docsDir == "" {
		tmp, err := os.MkdirTemp("", "rollwave-docs-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		// The docs come from the binary being packaged, so they describe
		// exactly its commands and flags.
		gen := exec.Command(filepath.Join(*binDir, "rollwave"), "gen-docs", tmp)
		if out, err := gen.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "Error: %s gen-docs: %v\n%s", gen.Path, err, out)
			return 1
		}
		*docsDir = tmp
	}
	paths, err := packaging.Build(packaging.Options{
		Dir: *dir, BinDir: *binDir, DocsDir: *docsDir, OutDir: *outDir, Version: v, Arch: *arch, Maintainer: *maint,
	})
	for _, p := range paths {
		fmt.Println(p)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
