package raftfsm

import (
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ACL roles, least privileged first. Each includes everything the ones
// before it may do.
const (
	RoleRead   = "read"
	RoleDeploy = "deploy"
	RoleAdmin  = "admin"
)

// ACLRoles lists the roles a token may have, least privileged first.
var ACLRoles = []string{RoleRead, RoleDeploy, RoleAdmin}

// checkACLToken validates a token as commands carry it.
func checkACLToken(t *v1.ACLToken) *RejectedError {
	switch {
	case t == nil:
		return reject(ErrInvalid, "token is required")
	case t.GetAccessorId() == "":
		return reject(ErrInvalid, "token accessor id is required")
	case t.GetName() == "":
		return reject(ErrInvalid, "token %s: name is required", t.GetAccessorId())
	case !slices.Contains(ACLRoles, t.GetRole()):
		return reject(ErrInvalid, "token %q: role %q must be one of read, deploy, admin", t.GetName(), t.GetRole())
	}
	if h := t.GetSecretHash(); len(h) != 64 || !isLowerHex(h) {
		return reject(ErrInvalid, "token %q: secret hash must be 64 lower-case hex digits (sha256)", t.GetName())
	}
	return nil
}

func isLowerHex(s string) bool {
	if _, err := hex.DecodeString(s); err != nil {
		return false
	}
	for _, r := range s {
		if r >= 'A' && r <= 'F' {
			return false
		}
	}
	return true
}

// addACLToken checks that the token's accessor, name and hash are
// unused, then stores it. Nothing changes on rejection.
func (v *view) addACLToken(t *v1.ACLToken, now int64, actor string) *RejectedError {
	if v.aclToken(t.GetAccessorId()) != nil {
		return reject(ErrExists, "a token with accessor %s already exists", t.GetAccessorId())
	}
	for _, o := range all[*v1.ACLToken](v, tACL, "id", nil) {
		if o.GetName() == t.GetName() {
			return reject(ErrExists, "a token named %q already exists (accessor %s); choose another name", t.GetName(), o.GetAccessorId())
		}
		if o.GetSecretHash() == t.GetSecretHash() {
			return reject(ErrExists, "a token with that secret already exists")
		}
	}
	t = clone(t)
	if t.CreatedUnixNano == 0 {
		t.CreatedUnixNano = now
	}
	if t.CreatedBy == "" {
		t.CreatedBy = actor
	}
	v.put(tACL, t)
	return nil
}

// applyACLBootstrap stores the first, admin, token. A cluster is
// bootstrapped once: the only way back is restoring a snapshot taken
// before the bootstrap.
func applyACLBootstrap(s *view, _ uint64, cmd *v1.ACLBootstrapCommand) error {
	m := s.meta()
	if m.aclBootstrapUnixNano != 0 {
		return reject(ErrConflict, "ACL bootstrap already done (%s); ask an admin token holder for a token (resetting needs a snapshot restore, see docs/security.md)",
			timeString(m.aclBootstrapUnixNano))
	}
	if cmd.GetTimeUnixNano() <= 0 {
		return reject(ErrInvalid, "time is required")
	}
	t := cmd.GetToken()
	if err := checkACLToken(t); err != nil {
		return err
	}
	if t.GetRole() != RoleAdmin {
		return reject(ErrInvalid, "the bootstrap token must have role admin, not %q", t.GetRole())
	}
	if err := s.addACLToken(t, cmd.GetTimeUnixNano(), t.GetName()); err != nil {
		return err
	}
	m.aclBootstrapUnixNano = cmd.GetTimeUnixNano()
	s.setMeta(m)
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "acl.bootstrapped", Actor: t.GetName(),
		Message: fmt.Sprintf("ACLs bootstrapped: admin token %q (%s)", t.GetName(), t.GetAccessorId()),
	})
	return nil
}

// applyUpsertACLToken adds a token. Tokens are never edited: delete one
// and create another.
func applyUpsertACLToken(s *view, _ uint64, cmd *v1.UpsertACLTokenCommand) error {
	if s.meta().aclBootstrapUnixNano == 0 {
		return reject(ErrConflict, "ACLs are not bootstrapped; run 'rollwave acl bootstrap' first")
	}
	t := cmd.GetToken()
	if err := checkACLToken(t); err != nil {
		return err
	}
	if err := s.addACLToken(t, cmd.GetTimeUnixNano(), cmd.GetActor()); err != nil {
		return err
	}
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "acl.token_created", Actor: cmd.GetActor(),
		Message: fmt.Sprintf("token %q (%s) created with role %s", t.GetName(), t.GetAccessorId(), t.GetRole()),
	})
	return nil
}

// applyDeleteACLToken removes a token. The last admin token cannot go:
// without one nobody could manage tokens again.
func applyDeleteACLToken(s *view, _ uint64, cmd *v1.DeleteACLTokenCommand) error {
	t := s.aclToken(cmd.GetAccessorId())
	if t == nil {
		return reject(ErrNotFound, "no token with accessor %q; see 'rollwave acl token list'", cmd.GetAccessorId())
	}
	if t.GetRole() == RoleAdmin {
		admins := 0
		for _, o := range all[*v1.ACLToken](s, tACL, "id", nil) {
			if o.GetRole() == RoleAdmin {
				admins++
			}
		}
		if admins == 1 {
			return reject(ErrConflict, "token %q is the last admin token; create another admin token before deleting it", t.GetName())
		}
	}
	s.del(tACL, t)
	s.appendEvent(&v1.Event{
		TimeUnixNano: cmd.GetTimeUnixNano(), Kind: "acl.token_deleted", Actor: cmd.GetActor(),
		Message: fmt.Sprintf("token %q (%s) deleted", t.GetName(), t.GetAccessorId()),
	})
	return nil
}

func timeString(unixNano int64) string {
	return "at " + time.Unix(0, unixNano).UTC().Format(time.RFC3339)
}
