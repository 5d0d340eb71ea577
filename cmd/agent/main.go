// Command rollwave-agent runs on every host and executes the coordinator's
// assignments on the host's blue/green slots.
package main

import (
	"fmt"
	"os"

	"github.com/rollwave/rollwave/internal/version"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "-version" || os.Args[1] == "--version") {
		fmt.Println("rollwave-agent", version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "rollwave-agent: the agent runtime is being built (see issue 3); only 'version' works in this build")
	os.Exit(1)
}
