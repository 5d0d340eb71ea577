package raftfsm

import (
	"strings"
	"testing"

	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

var (
	hashA = strings.Repeat("a", 64)
	hashB = strings.Repeat("b", 64)
	hashC = strings.Repeat("c", 64)
)

func aclBootstrapCmd(accessor, hash string) cmd {
	return cmd{ACLBootstrap, &v1.ACLBootstrapCommand{TimeUnixNano: t0, Token: &v1.ACLToken{
		AccessorId: accessor, SecretHash: hash, Name: "bootstrap", Role: RoleAdmin}}}
}

func aclTokenCmd(accessor, name, role, hash string) cmd {
	return cmd{UpsertACLToken, &v1.UpsertACLTokenCommand{TimeUnixNano: t0 + 1, Actor: "bootstrap", Token: &v1.ACLToken{
		AccessorId: accessor, SecretHash: hash, Name: name, Role: role}}}
}

func aclDeleteCmd(accessor string) cmd {
	return cmd{DeleteACLToken, &v1.DeleteACLTokenCommand{TimeUnixNano: t0 + 2, AccessorId: accessor, Actor: "bootstrap"}}
}

func TestApplyACL(t *testing.T) {
	boot := aclBootstrapCmd("acc-boot", hashA)
	runCases(t, []applyCase{
		{name: "bootstrap", cmd: boot, check: func(t *testing.T, s *State) {
			ok, at := s.ACLBootstrapped()
			tok := s.ACLToken("acc-boot")
			if !ok || at != t0 || tok.GetRole() != RoleAdmin || tok.GetCreatedUnixNano() != t0 || tok.GetCreatedBy() != "bootstrap" {
				t.Errorf("bootstrapped=%v at=%d token=%v", ok, at, tok)
			}
			if s.ResolveACLToken(hashA).GetAccessorId() != "acc-boot" || s.ResolveACLToken(hashB) != nil {
				t.Error("resolve by hash")
			}
			ev := s.Events("", 0, 0)
			if last := ev[len(ev)-1]; last.GetKind() != "acl.bootstrapped" || last.GetActor() != "bootstrap" {
				t.Errorf("event = %v", last)
			}
		}},
		{name: "bootstrap twice", setup: one(boot), cmd: aclBootstrapCmd("acc-2", hashB),
			wantErr: ErrConflict, wantMsg: "ACL bootstrap already done"},
		{name: "bootstrap needs admin", cmd: cmd{ACLBootstrap, &v1.ACLBootstrapCommand{TimeUnixNano: t0, Token: &v1.ACLToken{
			AccessorId: "a", SecretHash: hashA, Name: "b", Role: RoleRead}}}, wantErr: ErrInvalid, wantMsg: "must have role admin"},
		{name: "bootstrap needs time", cmd: cmd{ACLBootstrap, &v1.ACLBootstrapCommand{Token: &v1.ACLToken{
			AccessorId: "a", SecretHash: hashA, Name: "b", Role: RoleAdmin}}}, wantErr: ErrInvalid, wantMsg: "time is required"},
		{name: "bootstrap bad hash", cmd: aclBootstrapCmd("a", "ABC"), wantErr: ErrInvalid, wantMsg: "64 lower-case hex"},
		{name: "bootstrap upper-case hash", cmd: aclBootstrapCmd("a", strings.Repeat("A", 64)), wantErr: ErrInvalid, wantMsg: "64 lower-case hex"},
		{name: "bootstrap no token", cmd: cmd{ACLBootstrap, &v1.ACLBootstrapCommand{TimeUnixNano: t0}}, wantErr: ErrInvalid, wantMsg: "token is required"},
		{name: "create before bootstrap", cmd: aclTokenCmd("r", "ci", RoleRead, hashB), wantErr: ErrConflict, wantMsg: "rollwave acl bootstrap"},
		{name: "create", setup: one(boot), cmd: aclTokenCmd("r", "ci", RoleRead, hashB), check: func(t *testing.T, s *State) {
			if tok := s.ACLToken("r"); tok.GetName() != "ci" || tok.GetCreatedBy() != "bootstrap" || tok.GetCreatedUnixNano() != t0+1 {
				t.Errorf("token = %v", tok)
			}
			if len(s.ACLTokens()) != 2 || s.ResolveACLToken(hashB).GetName() != "ci" {
				t.Errorf("tokens = %v", s.ACLTokens())
			}
		}},
		{name: "create bad role", setup: one(boot), cmd: aclTokenCmd("r", "ci", "root", hashB), wantErr: ErrInvalid, wantMsg: `role "root"`},
		{name: "create no name", setup: one(boot), cmd: aclTokenCmd("r", "", RoleRead, hashB), wantErr: ErrInvalid, wantMsg: "name is required"},
		{name: "create no accessor", setup: one(boot), cmd: aclTokenCmd("", "ci", RoleRead, hashB), wantErr: ErrInvalid, wantMsg: "accessor id is required"},
		{name: "create accessor taken", setup: one(boot), cmd: aclTokenCmd("acc-boot", "ci", RoleRead, hashB), wantErr: ErrExists, wantMsg: "accessor acc-boot"},
		{name: "create name taken", setup: one(boot), cmd: aclTokenCmd("r", "bootstrap", RoleRead, hashB), wantErr: ErrExists, wantMsg: `named "bootstrap"`},
		{name: "create secret taken", setup: one(boot), cmd: aclTokenCmd("r", "ci", RoleRead, hashA), wantErr: ErrExists, wantMsg: "secret"},
		{name: "delete", setup: one(boot, aclTokenCmd("r", "ci", RoleRead, hashB)), cmd: aclDeleteCmd("r"), check: func(t *testing.T, s *State) {
			if s.ACLToken("r") != nil || s.ResolveACLToken(hashB) != nil {
				t.Error("token still there")
			}
			ev := s.Events("", 0, 0)
			if last := ev[len(ev)-1]; last.GetKind() != "acl.token_deleted" || last.GetActor() != "bootstrap" {
				t.Errorf("event = %v", last)
			}
		}},
		{name: "delete unknown", setup: one(boot), cmd: aclDeleteCmd("nope"), wantErr: ErrNotFound, wantMsg: "acl token list"},
		{name: "delete last admin", setup: one(boot, aclTokenCmd("r", "ci", RoleRead, hashB)), cmd: aclDeleteCmd("acc-boot"),
			wantErr: ErrConflict, wantMsg: "last admin token"},
		{name: "delete an admin while another is left", setup: one(boot, aclTokenCmd("adm", "ops", RoleAdmin, hashC)), cmd: aclDeleteCmd("acc-boot"),
			check: func(t *testing.T, s *State) {
				if ok, _ := s.ACLBootstrapped(); !ok || len(s.ACLTokens()) != 1 {
					t.Errorf("tokens = %v", s.ACLTokens())
				}
			}},
	})
}
