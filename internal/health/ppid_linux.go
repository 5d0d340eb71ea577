//go:build linux

package health

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
)

// parentPID reads the parent PID from /proc/PID/stat with one read.
// gopsutil's Process.Ppid parses the whole stat file and first checks the
// PID exists, which triples the cost of a full /proc scan.
func parentPID(_ context.Context, pid int32) (int32, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces or ')', so
	// parse from the last ')': "state ppid ...".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 2 {
		return 0, errors.New("malformed stat")
	}
	ppid, err := strconv.ParseInt(string(fields[1]), 10, 32)
	return int32(ppid), err
}
