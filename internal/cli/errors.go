package cli

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// describeError turns err into the message after "Error: ". A gRPC status
// error becomes its message alone, verbatim (spec errors span several lines
// and read "bad.hcl:21:14: …"), except where the code itself tells the
// operator what to do next.
func describeError(err error, address string) string {
	st, ok := status.FromError(err)
	if !ok {
		// status.FromError unwraps, but a wrapped status keeps its prefix.
		return err.Error()
	}
	prefix := ""
	if s := err.Error(); !strings.HasPrefix(s, "rpc error:") {
		if i := strings.Index(s, ": rpc error:"); i >= 0 {
			prefix = s[:i] + ": "
		}
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Sprintf("%sUnavailable: cannot reach a coordinator at %s: %s\n"+
			"Is it running? Choose another with -address or %s.",
			prefix, address, cleanTransportMessage(msg), EnvAddress)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("%sDeadlineExceeded: no answer from %s in time (raise -timeout): %s", prefix, address, msg)
	case codes.Unimplemented:
		return fmt.Sprintf("%sUnimplemented: the coordinator at %s does not support this request (%s); is it an older version?", prefix, address, msg)
	case codes.Canceled:
		return prefix + "canceled"
	}
	return prefix + msg
}

// cleanTransportMessage strips grpc's transport wrapping from a dial failure:
//
//	connection error: desc = "transport: Error while dialing: dial tcp …: connection refused"
//
// becomes "dial tcp …: connection refused".
func cleanTransportMessage(msg string) string {
	const marker = "Error while dialing: "
	if i := strings.Index(msg, marker); i >= 0 {
		return strings.TrimSuffix(msg[i+len(marker):], `"`)
	}
	return msg
}
