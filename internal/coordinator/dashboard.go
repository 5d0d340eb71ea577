package coordinator

import (
	"fmt"

	"github.com/rollwave/rollwave/internal/dashboard"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Dashboard returns the web dashboard of this coordinator (mount it at
// cfg.Prefix, "/ui/" by default, on the HTTP listener). It talks to this
// server's own gRPC operator API, through the listener and with the
// server's own client certificate when TLS is on, carrying the browser's
// ACL token: every read and action passes the same ACL interceptor, role
// table, audit, rate limit and leader forwarding as the CLI's (see
// internal/dashboard's package comment for why it does not check roles
// itself). cfg.API and cfg.ACLEnabled are filled in here; call Close on
// the result before stopping the HTTP server, to end its live streams.
func (s *Server) Dashboard(cfg dashboard.Config) (*dashboard.Dashboard, error) {
	conn, err := s.fwd.conn(s.grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: connect to this server's gRPC API at %s: %w", s.grpcAddr, err)
	}
	cfg.API = rollwavev1.NewOperatorServiceClient(conn)
	cfg.ACLEnabled = s.cfg.ACLEnabled
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	return dashboard.New(cfg)
}
