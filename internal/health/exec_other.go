//go:build !unix

package health

import "os/exec"

// setProcessGroup is a no-op where process groups do not exist; the
// default cancellation kills the direct child only.
func setProcessGroup(*exec.Cmd) {}
