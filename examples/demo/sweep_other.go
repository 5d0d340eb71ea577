//go:build !linux

package main

// sweep is a no-op where /proc is not available; process groups alone
// stop the children there.
func sweep(dir string) []string { return nil }
