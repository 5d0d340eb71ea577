// Command mkpkg builds the rollwave deb and rpm packages from the nfpm
// definitions in packaging/ and the binaries in bin/. `make packages` runs
// it after `make build`.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/rollwave/rollwave/packaging"
)

func main() {
	fs := flag.NewFlagSet("mkpkg", flag.ExitOnError)
	var (
		version = fs.String("version", "", "git describe output or a version; converted with packaging.PackageVersion (required)")
		arch    = fs.String("arch", envOr("GOARCH", runtime.GOARCH), "Go architecture of the binaries")
		dir     = fs.String("dir", "packaging", "packaging directory (nfpm YAML, units, configs, scripts)")
		binDir  = fs.String("bin", "bin", "directory holding rollwave and rollwave-agent")
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
		os.Exit(2)
	}
	v, err := packaging.PackageVersion(*version)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	paths, err := packaging.Build(packaging.Options{
		Dir: *dir, BinDir: *binDir, OutDir: *outDir, Version: v, Arch: *arch, Maintainer: *maint,
	})
	for _, p := range paths {
		fmt.Println(p)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
