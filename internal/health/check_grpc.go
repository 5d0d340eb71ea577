package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// GRPCConfig describes a gRPC health check: grpc.health.v1.Health/Check
// must answer SERVING for Service.
type GRPCConfig struct {
	// Name appears in errors and status; empty means the address.
	Name string
	// Address is host:port.
	Address string
	// Service is the service name asked about; "" is the server as a
	// whole.
	Service string
	// TLS dials with TLS: the system roots, or CAFile's; ServerName
	// overrides the name verified (default the address's host).
	TLS        bool
	ServerName string
	CAFile     string
	// Timeout bounds one run (dial and call). 0 means DefaultTimeout.
	Timeout time.Duration
}

type grpcCheck struct {
	name  string
	cfg   GRPCConfig
	creds credentials.TransportCredentials
}

// NewGRPCCheck returns a check that calls grpc.health.v1.Health/Check on
// cfg.Address. It fails on a bad address or an unreadable CA file, naming
// the field. Each run opens its own connection and closes it (as the
// HTTP check does), so a server that stopped accepting is noticed.
func NewGRPCCheck(cfg GRPCConfig) (Check, error) {
	name := cfg.Name
	if name == "" {
		name = cfg.Address
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return nil, fmt.Errorf("grpc check %s: address %q: want host:port: %w", name, cfg.Address, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("grpc check %s: timeout %s is negative", name, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	creds := insecure.NewCredentials()
	if cfg.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("grpc check %s: ca_file: %w", name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("grpc check %s: ca_file %s holds no PEM certificate", name, cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		creds = credentials.NewTLS(tc)
	} else if cfg.CAFile != "" || cfg.ServerName != "" {
		return nil, fmt.Errorf("grpc check %s: ca_file and tls_server_name need tls = true", name)
	}
	return &grpcCheck{name: name, cfg: cfg, creds: creds}, nil
}

func (c *grpcCheck) Name() string { return c.name }

func (c *grpcCheck) withName(name string) Check { cp := *c; cp.name = name; return &cp }

func (c *grpcCheck) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	conn, err := grpc.NewClient(c.cfg.Address, grpc.WithTransportCredentials(c.creds))
	if err != nil {
		return c.errorf("%w", err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: c.cfg.Service}, grpc.WaitForReady(false))
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return c.errorf("timed out after %s", c.cfg.Timeout)
		case status.Code(err) == codes.NotFound:
			return c.errorf("service %q is unknown to the server", c.cfg.Service)
		case status.Code(err) == codes.Unimplemented:
			return c.errorf("the server does not implement grpc.health.v1")
		}
		return c.errorf("%s", status.Convert(err).Message())
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return c.errorf("status %s, want SERVING", s)
	}
	return nil
}

func (c *grpcCheck) errorf(format string, args ...any) error {
	return fmt.Errorf("grpc check %s: %s service %q: "+format, append([]any{c.name, c.cfg.Address, c.cfg.Service}, args...)...)
}
