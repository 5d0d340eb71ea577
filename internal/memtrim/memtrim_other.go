//go:build !linux

package memtrim

import "errors"

// ErrUnsupported is returned where there is nothing to release.
var ErrUnsupported = errors.New("memtrim: only supported on Linux")

// ReleaseExecutable does nothing outside Linux.
func ReleaseExecutable() (Result, error) { return Result{}, ErrUnsupported }
