package gossip

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

func serverMeta(id string) Meta {
	return Meta{
		Role:      RoleServer,
		NodeID:    id,
		GRPCAddr:  "127.0.0.1:7400",
		RaftAddr:  "127.0.0.1:7300",
		Cell:      "cell-a",
		Region:    "eu-west",
		Version:   "0.1.0",
		Bootstrap: 3,
	}
}

func agentMeta(id string) Meta {
	return Meta{Role: RoleAgent, NodeID: id, Cell: "cell-b", Region: "eu-west", Version: "0.1.0"}
}

func TestMetaRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		meta Meta
	}{
		// every field set, including the large-number edges
		{"server full", Meta{
			Role: RoleServer, NodeID: "srv-1", GRPCAddr: "10.0.0.1:7400", RaftAddr: "10.0.0.1:7300",
			Cell: "c1", Region: "r1", Version: "1.2.3", Leader: true, Term: 1<<63 + 5, Bootstrap: 5, Leaving: true,
		}},
		// agents leave the server fields zero, which are then omitted
		{"agent", agentMeta("host-17")},
		// the zero Meta encodes to the version byte alone
		{"zero", Meta{}},
		// non-ASCII is fine as long as it is UTF-8
		{"unicode", Meta{Role: RoleAgent, NodeID: "hôte-ü", Cell: "セル"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeMeta(tc.meta)
			if err != nil {
				t.Fatalf("EncodeMeta: %v", err)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta(% x): %v", b, err)
			}
			if got != tc.meta {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.meta)
			}
		})
	}
}

func TestMetaRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := Meta{
			Role:      Role(rapid.SampledFrom([]string{"server", "agent", "", "observer"}).Draw(t, "role")),
			NodeID:    rapid.StringN(0, 40, -1).Draw(t, "node_id"),
			GRPCAddr:  rapid.StringN(0, 30, -1).Draw(t, "grpc"),
			RaftAddr:  rapid.StringN(0, 30, -1).Draw(t, "raft"),
			Cell:      rapid.StringN(0, 20, -1).Draw(t, "cell"),
			Region:    rapid.StringN(0, 20, -1).Draw(t, "region"),
			Version:   rapid.StringN(0, 20, -1).Draw(t, "version"),
			Leader:    rapid.Bool().Draw(t, "leader"),
			Term:      rapid.Uint64().Draw(t, "term"),
			Bootstrap: rapid.IntRange(0, 1<<31-1).Draw(t, "bootstrap"),
			Leaving:   rapid.Bool().Draw(t, "leaving"),
		}
		b, err := EncodeMeta(m)
		if err != nil {
			t.Fatalf("EncodeMeta: %v", err)
		}
		got, err := DecodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("round trip: got %+v, %v; want %+v", got, err, m)
		}
	})
}

func TestEncodeMetaSizeLimit(t *testing.T) {
	// Grow Version until the encoding is exactly MetaMaxSize; one more byte
	// must fail and the error must name the size.
	m := serverMeta("srv-1")
	base, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	// Version's length prefix is 1 byte up to 127 bytes and 2 bytes after,
	// so solve for a long version (2-byte prefix).
	m.Version = strings.Repeat("v", MetaMaxSize-len(base)+len("0.1.0")-1)
	b, err := EncodeMeta(m)
	if err != nil {
		t.Fatalf("exactly %d bytes should fit: %v", MetaMaxSize, err)
	}
	if len(b) != MetaMaxSize {
		t.Fatalf("test setup: encoded %d bytes, want %d", len(b), MetaMaxSize)
	}
	m.Version += "v"
	_, err = EncodeMeta(m)
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("want ErrMetaTooLarge, got %v", err)
	}
	if !strings.Contains(err.Error(), "513") || !strings.Contains(err.Error(), "512") {
		t.Fatalf("error should name the size 513 and limit 512: %v", err)
	}
}

func TestEncodeMetaNegativeBootstrap(t *testing.T) {
	if _, err := EncodeMeta(Meta{Bootstrap: -1}); err == nil || !strings.Contains(err.Error(), "Bootstrap") {
		t.Fatalf("want error naming Bootstrap, got %v", err)
	}
}

func TestDecodeMetaGarbage(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want string // substring of the error
	}{
		// nothing at all
		{"empty", nil, "empty"},
		// JSON from some other program, or a future incompatible layout
		{"wrong version", []byte(`{"role":"server"}`), "unsupported version byte 123"},
		// a tag varint cut short
		{"truncated tag", []byte{1, 0x80}, "bad field tag"},
		// a tag with no length
		{"missing length", []byte{1, tagRole}, "bad length"},
		// length runs past the end
		{"length overflow", []byte{1, tagNodeID, 10, 'a', 'b'}, "claims 10 bytes, only 2 left"},
		// strings must be UTF-8
		{"bad utf8", []byte{1, tagCell, 2, 0xff, 0xfe}, "not valid UTF-8"},
		// bools are exactly one byte 0/1
		{"bad bool", []byte{1, tagLeader, 1, 7}, "bool must be one byte"},
		// varints must fill their field
		{"bad uint", []byte{1, tagTerm, 2, 1, 1}, "bad varint"},
		// a field twice is corruption, not an update
		{"duplicate", []byte{1, tagNodeID, 1, 'a', tagNodeID, 1, 'b'}, "appears twice"},
		// bootstrap beyond int32
		{"huge bootstrap", []byte{1, tagBootstrap, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMeta(tc.in)
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("want ErrBadMeta, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q should contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeMetaSkipsUnknownFields(t *testing.T) {
	want := agentMeta("host-1")
	b, err := EncodeMeta(want)
	if err != nil {
		t.Fatal(err)
	}
	// A newer version might add tag 42 (a string) and tag 300 (two-byte tag).
	b = appendField(b, 42, []byte("labels=gpu"))
	b = appendField(b, 300, []byte{0, 1, 2})
	got, err := DecodeMeta(b)
	if err != nil {
		t.Fatalf("unknown fields must be skipped: %v", err)
	}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{{}, serverMeta("s"), agentMeta("a")} {
		b, _ := EncodeMeta(m)
		f.Add(b)
	}
	f.Add([]byte{1, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes the same.
		b2, err := EncodeMeta(m)
		if err != nil {
			if errors.Is(err, ErrMetaTooLarge) {
				return
			}
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		m2, err := DecodeMeta(b2)
		if err != nil || m2 != m {
			t.Fatalf("re-decode: got %+v, %v; want %+v", m2, err, m)
		}
	})
}

func TestMetaValidate(t *testing.T) {
	cases := []struct {
		name string
		meta Meta
		want string // "" means valid
	}{
		{"server ok", serverMeta("s1"), ""},
		{"agent ok", agentMeta("a1"), ""},
		// role is required and must be known
		{"no role", Meta{NodeID: "x"}, `Meta.Role ""`},
		{"bad role", Meta{Role: "boss", NodeID: "x"}, `Meta.Role "boss"`},
		// every node needs an identity
		{"no node id", Meta{Role: RoleAgent}, "Meta.NodeID is required"},
		// servers must say where raft and gRPC live
		{"server no raft", Meta{Role: RoleServer, NodeID: "s", GRPCAddr: "h:1"}, "Meta.RaftAddr is required"},
		// addresses must be host:port
		{"bad grpc addr", Meta{Role: RoleAgent, NodeID: "a", GRPCAddr: "nohost"}, `Meta.GRPCAddr "nohost"`},
		// leadership is a server matter
		{"agent leader", Meta{Role: RoleAgent, NodeID: "a", Leader: true}, "for role server only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.meta.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v should contain %q", err, tc.want)
			}
		})
	}
}

// Fields most members share decode to one copy per distinct value; the
// per-node ID stays a copy of its own.
func TestDecodeMetaSharesCommonStrings(t *testing.T) {
	enc := func(id string) []byte {
		b, err := EncodeMeta(Meta{Role: RoleAgent, NodeID: id, Cell: "cell-03", Region: "eu-west", Version: "1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, err := DecodeMeta(enc("host-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeMeta(enc("host-b"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Cell != "cell-03" || a.Region != "eu-west" || a.Version != "1.2.3" || a.Role != RoleAgent || b.NodeID != "host-b" {
		t.Fatalf("decoded %+v %+v", a, b)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Cell, b.Cell) || !same(a.Region, b.Region) || !same(a.Version, b.Version) || !same(string(a.Role), string(b.Role)) {
		t.Fatal("role, cell, region and version should share one copy across decodes")
	}
}
