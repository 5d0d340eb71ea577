//go:build !linux

package health

import (
	"context"

	"github.com/shirou/gopsutil/v4/process"
)

// parentPID asks gopsutil for the parent PID where /proc is not available.
func parentPID(ctx context.Context, pid int32) (int32, error) {
	p, err := process.NewProcessWithContext(ctx, pid)
	if err != nil {
		return 0, err
	}
	return p.PpidWithContext(ctx)
}
