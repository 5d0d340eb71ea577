package coordinator

import (
	"net"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// OperatorForTest returns s's operator API without the gRPC server around
// it: tests call handlers directly to see errors as the server sees them
// (before the error interceptor), forwarding to the leader included.
func OperatorForTest(s *Server) rollwavev1.OperatorServiceServer { return &operatorService{s: s} }

// SetRaftNetForTest puts fault hooks between c's server and its raft
// peers (failover.go, raftNetHooks): acceptWrap wraps each accepted raft
// connection, probeDial replaces the early-campaign probe's dial.
func SetRaftNetForTest(c *Config, acceptWrap func(net.Conn) net.Conn, probeDial func(addr string, timeout time.Duration) (net.Conn, error)) {
	c.raftNet = raftNetHooks{acceptWrap: acceptWrap, probeDial: probeDial}
}
