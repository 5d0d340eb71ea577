package coordinator

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Credentials in URLs ("https://user:secret@host/…") never leave in an
// operator response. Release specs refuse them now, but raft entries
// written before may hold them: in the artifact URL, in the submitted
// source text, and in reasons and event messages that quote the URL. The
// replicated state keeps them (agents still need them to fetch); every
// OperatorService response and stream message is passed through
// redactMessage on the way out, in one place, so no listing, get, watch
// or event path can forget it. AgentService is not redacted: the agent
// fetching the artifact needs the URL as written.

// redactUnary redacts OperatorService responses.
func redactUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil || !strings.HasPrefix(info.FullMethod, operatorServicePrefix) {
		return resp, err
	}
	if m, ok := resp.(proto.Message); ok {
		return redactMessage(m), nil
	}
	return resp, nil
}

// redactStream redacts the messages OperatorService streams send.
func redactStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, operatorServicePrefix) {
		return handler(srv, ss)
	}
	return handler(srv, redactingStream{ss})
}

type redactingStream struct{ grpc.ServerStream }

func (s redactingStream) SendMsg(m any) error {
	if pm, ok := m.(proto.Message); ok {
		m = redactMessage(pm)
	}
	return s.ServerStream.SendMsg(m)
}

// redactMessage returns m with URL credentials redacted in every string
// field (and in a release's source text). m itself is never changed (it
// may share memory with the replicated state): a copy is made only when
// something needs redacting.
func redactMessage(m proto.Message) proto.Message {
	if m == nil || !walkStrings(m.ProtoReflect(), false) {
		return m
	}
	c := proto.Clone(m)
	walkStrings(c.ProtoReflect(), true)
	return c
}

// releaseSource is the one bytes field that holds text to redact;
// other bytes (snapshot chunks) are data and pass untouched.
var releaseSource = (&rollwavev1.Release{}).ProtoReflect().Descriptor().Fields().ByName("source")

// walkStrings reports whether any string in m needs redacting; with fix
// it also redacts them in place.
func walkStrings(m protoreflect.Message, fix bool) bool {
	found := false
	redact := func(s string) (string, bool) {
		r := spec.RedactURLsIn(s)
		return r, r != s
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				switch fd.Kind() {
				case protoreflect.StringKind:
					if r, ok := redact(l.Get(i).String()); ok {
						found = true
						if fix {
							l.Set(i, protoreflect.ValueOfString(r))
						}
					}
				case protoreflect.MessageKind, protoreflect.GroupKind:
					found = walkStrings(l.Get(i).Message(), fix) || found
				}
			}
		case fd.IsMap():
			mp := v.Map()
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				switch fd.MapValue().Kind() {
				case protoreflect.StringKind:
					if r, ok := redact(mv.String()); ok {
						found = true
						if fix {
							mp.Set(k, protoreflect.ValueOfString(r))
						}
					}
				case protoreflect.MessageKind:
					found = walkStrings(mv.Message(), fix) || found
				}
				return true
			})
		case fd.Kind() == protoreflect.StringKind:
			if r, ok := redact(v.String()); ok {
				found = true
				if fix {
					m.Set(fd, protoreflect.ValueOfString(r))
				}
			}
		case fd == releaseSource:
			if r, ok := redact(string(v.Bytes())); ok {
				found = true
				if fix {
					m.Set(fd, protoreflect.ValueOfBytes([]byte(r)))
				}
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			found = walkStrings(v.Message(), fix) || found
		}
		return true
	})
	return found
}
