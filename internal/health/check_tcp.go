package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

type tcpCheck struct {
	name    string
	address string
	timeout time.Duration
}

// NewTCPCheck returns a check that passes when a TCP connection to address
// ("host:port") opens within timeout (0 means DefaultTimeout). The check is
// named after the address; use WithName to rename it.
func NewTCPCheck(address string, timeout time.Duration) (Check, error) {
	if _, _, err := net.SplitHostPort(address); err != nil {
		return nil, fmt.Errorf("tcp check %s: address %q: %w", address, address, err)
	}
	if timeout < 0 {
		return nil, fmt.Errorf("tcp check %s: timeout %s is negative", address, timeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &tcpCheck{name: address, address: address, timeout: timeout}, nil
}

func (c *tcpCheck) Name() string { return c.name }

func (c *tcpCheck) withName(name string) Check { cp := *c; cp.name = name; return &cp }

func (c *tcpCheck) Run(ctx context.Context) error {
	d := net.Dialer{Timeout: c.timeout}
	conn, err := d.DialContext(ctx, "tcp", c.address)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("tcp check %s: connect %s: timed out after %s", c.name, c.address, c.timeout)
		}
		return fmt.Errorf("tcp check %s: %w", c.name, err)
	}
	_ = conn.Close()
	return nil
}
