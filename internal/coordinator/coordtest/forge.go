package coordtest

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/raftfsm"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// This file plays an attacker who reaches a server's raft port and speaks
// hashicorp/raft's own transport to it, as the security tests (in-process
// and on real hosts) need.

// ForgedAdminEntry returns a raft log entry that, applied, gives an
// attacker an admin ACL token named name, and the token's accessor id. On
// a cluster whose ACLs are bootstrapped it is an UpsertACLToken command;
// before, an ACL bootstrap command (which needs no earlier state).
func ForgedAdminEntry(name string, bootstrapped bool) (data []byte, accessor string, err error) {
	hash := sha256.Sum256([]byte("forged-secret-" + name))
	accessor = "forged-" + name
	tok := &rollwavev1.ACLToken{AccessorId: accessor, SecretHash: hex.EncodeToString(hash[:]), Name: name, Role: raftfsm.RoleAdmin}
	now := time.Now().UnixNano()
	if bootstrapped {
		data, err = raftfsm.Encode(raftfsm.UpsertACLToken, &rollwavev1.UpsertACLTokenCommand{TimeUnixNano: now, Token: tok, Actor: name})
	} else {
		data, err = raftfsm.Encode(raftfsm.ACLBootstrap, &rollwavev1.ACLBootstrapCommand{TimeUnixNano: now, Token: tok})
	}
	return data, accessor, err
}

// PlainRaftTransport is raft's own TCP transport, as an attacker without
// any certificate would use it.
func PlainRaftTransport() (*raft.NetworkTransport, error) {
	return raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
}

// TLSRaftTransport is raft's network transport dialing with cfg (a client
// TLS configuration: for example an agent's or the CLI's certificate).
func TLSRaftTransport(cfg *tls.Config) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransport(&tlsDialStream{Listener: ln, cfg: cfg}, 1, 5*time.Second, io.Discard), nil
}

type tlsDialStream struct {
	net.Listener
	cfg *tls.Config
}

func (s *tlsDialStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.cfg)
}

// ErrForgeryRefusedByRaft says the transport carried the forged request
// but raft itself did not append it (a log mismatch): the forgery reached
// raft, which is what must never happen.
var ErrForgeryRefusedByRaft = errors.New("raft answered the forged AppendEntries but did not append it")

// ForgeAppend tries to append data to the raft log of the server at addr
// and have it applied, the way an attacker would: a first AppendEntries
// with term 0 learns the server's term and last index from its answer;
// the second claims to be a leader of that term and appends one entry
// after the last one, with the commit index covering it. It returns nil
// only when the server accepted the entry.
func ForgeAppend(trans *raft.NetworkTransport, addr string, data []byte) error {
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("intruder"), Addr: []byte(trans.LocalAddr())}
	var probe raft.AppendEntriesResponse
	if err := trans.AppendEntries("target", raft.ServerAddress(addr), &raft.AppendEntriesRequest{RPCHeader: hdr}, &probe); err != nil {
		return fmt.Errorf("probe AppendEntries to %s: %w", addr, err)
	}
	next := probe.LastLog + 1
	req := &raft.AppendEntriesRequest{
		RPCHeader: hdr, Term: probe.Term, PrevLogEntry: probe.LastLog, PrevLogTerm: probe.Term,
		Entries:           []*raft.Log{{Index: next, Term: probe.Term, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}},
		LeaderCommitIndex: next,
	}
	var resp raft.AppendEntriesResponse
	if err := trans.AppendEntries("target", raft.ServerAddress(addr), req, &resp); err != nil {
		return fmt.Errorf("forged AppendEntries to %s: %w", addr, err)
	}
	if !resp.Success {
		return fmt.Errorf("%w (term %d, last index %d)", ErrForgeryRefusedByRaft, resp.Term, resp.LastLog)
	}
	return nil
}
