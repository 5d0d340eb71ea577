package agent

import (
	"fmt"
	"net"
	"strconv"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// shiftPorts adds the agent's port offset to the spec's slot ports and
// traffic port, in place. With offset 0 it changes nothing.
func shiftPorts(spec *rollwavev1.ReleaseSpec, offset int) error {
	if offset == 0 || spec == nil {
		return nil
	}
	if s := spec.GetSlots(); s != nil {
		s.BluePort += int32(offset)
		s.GreenPort += int32(offset)
	}
	if t := spec.GetTraffic(); t != nil && t.GetListen() != "" {
		host, port, err := net.SplitHostPort(t.GetListen())
		if err != nil {
			return fmt.Errorf("traffic.listen %q: %w", t.GetListen(), err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("traffic.listen %q: port is not a number", t.GetListen())
		}
		t.Listen = net.JoinHostPort(host, strconv.Itoa(p+offset))
	}
	return nil
}
