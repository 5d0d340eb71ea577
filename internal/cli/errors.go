package cli

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes for a request the coordinator refused or could not serve,
// one per kind of gRPC status code, so scripts can tell "no such release"
// from "try again later" without parsing messages. Other errors (local
// failures, a watched release that ended without succeeding, Internal,
// Unknown) are ExitError; usage errors are ExitUsage.
const (
	ExitNotFound    = 4 // NotFound: no such release, cell, token, ...
	ExitExists      = 5 // AlreadyExists: the id or name is taken
	ExitInvalid     = 6 // InvalidArgument, OutOfRange: the request or spec is wrong
	ExitConflict    = 7 // FailedPrecondition, Aborted: not possible in the current state
	ExitDenied      = 8 // PermissionDenied, Unauthenticated: the token or certificate does not allow it
	ExitUnavailable = 9 // Unavailable, DeadlineExceeded, ResourceExhausted: try again
)

// exitCode returns the exit code for an error that reached Run after the
// command started: the status code's, or ExitError.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	var se interface {
		error
		GRPCStatus() *status.Status
	}
	if !errors.As(err, &se) {
		return ExitError
	}
	switch se.GRPCStatus().Code() {
	case codes.NotFound:
		return ExitNotFound
	case codes.AlreadyExists:
		return ExitExists
	case codes.InvalidArgument, codes.OutOfRange:
		return ExitInvalid
	case codes.FailedPrecondition, codes.Aborted:
		return ExitConflict
	case codes.PermissionDenied, codes.Unauthenticated:
		return ExitDenied
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return ExitUnavailable
	}
	return ExitError
}

// describeError turns err into the message after "Error: ". A gRPC status
// error becomes its message alone, verbatim (spec errors span several lines
// and read "bad.hcl:21:14: …"), except where the code itself tells the
// operator what to do next.
func describeError(err error, address string) string {
	var se interface {
		error
		GRPCStatus() *status.Status
	}
	if !errors.As(err, &se) {
		return err.Error()
	}
	// Context added around the status error ("saving snapshot: …") stays;
	// grpc's "rpc error: code = … desc =" goes.
	prefix := strings.TrimSuffix(err.Error(), se.Error())
	st := se.GRPCStatus()
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if hint := tlsMismatch(msg); hint != "" {
			return fmt.Sprintf("%sUnavailable: cannot talk to the coordinator at %s: %s\n%s", prefix, address, cleanTransportMessage(msg), hint)
		}
		if isTransportFailure(msg) {
			return fmt.Sprintf("%sUnavailable: cannot reach a coordinator at %s: %s\n"+
				"Is it running? Choose another with -address or %s.",
				prefix, address, cleanTransportMessage(msg), EnvAddress)
		}
		// The coordinator answered but cannot serve (no leader yet, shutting down).
		return fmt.Sprintf("%sUnavailable: the coordinator at %s cannot serve the request: %s\n"+
			"Try again shortly, or choose another with -address or %s.", prefix, address, msg, EnvAddress)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("%sDeadlineExceeded: no answer from %s within -timeout: %s", prefix, address, msg)
	case codes.Unimplemented:
		return fmt.Sprintf("%sUnimplemented: the coordinator at %s does not support this request (%s); is it an older version?", prefix, address, msg)
	case codes.Canceled:
		return prefix + "canceled"
	}
	return prefix + msg
}

// tlsMismatch explains a dial failure caused by one side speaking TLS and
// the other not, or returns "". A TLS server drops a plaintext client
// without a word (the client then reads EOF where the server's HTTP/2
// preface should be: a TLS client would have failed in the handshake
// instead); a plaintext server answers a TLS client with HTTP/2 bytes that
// are no TLS record.
func tlsMismatch(msg string) string {
	switch {
	case strings.Contains(msg, "error reading server preface") &&
		(strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset by peer")):
		return fmt.Sprintf("The server closed the connection without speaking gRPC: it wants mutual TLS (or refused the connection over its limits). "+
			"Give the CLI the cluster CA and a cli certificate with -ca-file, -client-cert and -client-key, or %s, %s and %s "+
			"(make one with 'rollwave tls cert create -cli').", EnvCACert, EnvClientCert, EnvClientKey)
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("The server does not speak TLS but the CLI does: check the address, or drop -ca-file, -client-cert and -client-key (and %s, %s, %s).",
			EnvCACert, EnvClientCert, EnvClientKey)
	}
	return ""
}

// isTransportFailure tells a connection that could not be made from an
// Unavailable status sent by a coordinator.
func isTransportFailure(msg string) bool {
	for _, s := range []string{"connection error", "Error while dialing", "name resolver", "connection closed", "no children to pick from"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
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
	// connection error: desc = "error reading server preface: EOF"
	if rest, ok := strings.CutPrefix(msg, `connection error: desc = "`); ok {
		return strings.TrimPrefix(strings.TrimSuffix(rest, `"`), "transport: ")
	}
	return msg
}
