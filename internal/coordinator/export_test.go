package coordinator

import rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"

// OperatorForTest returns s's operator API without the gRPC server around
// it: tests call handlers directly to see errors as the server sees them
// (before the error interceptor), forwarding to the leader included.
func OperatorForTest(s *Server) rollwavev1.OperatorServiceServer { return &operatorService{s: s} }
