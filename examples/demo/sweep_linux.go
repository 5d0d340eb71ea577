package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sweep SIGKILLs any process whose command line mentions dir (the demo's
// temp dir: coordinators' and agents' data dirs, the app slots' binaries)
// and returns what it found. After a clean stop it finds nothing; it is
// the last line of defence against a leaked process.
func sweep(dir string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			found = append(found, strconv.Itoa(pid)+" "+cmdline)
		}
	}
	return found
}
