// Command rollwave is the coordinator server (`rollwave server`) and the
// operator CLI (every other subcommand), in one binary as Nomad and Consul do.
package main

import (
	"os"
	// Freeze calendars name IANA zones; servers without
	// /usr/share/zoneinfo still resolve them.
	_ "time/tzdata"

	"github.com/rollwave/rollwave/internal/cli"
	"github.com/rollwave/rollwave/internal/version"
)

func main() {
	root := cli.NewRootCommand(version.Version)
	root.AddCommand(newServerCommand())
	os.Exit(cli.Run(root, os.Args[1:], os.Stdout, os.Stderr))
}
