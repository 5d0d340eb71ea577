package coordinator_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
)

// rawHTTP2 opens a plain HTTP/2 connection to a one-node cluster's
// leader, as a client: preface and SETTINGS sent, 10 s deadline.
func rawHTTP2(t *testing.T) *http2.Framer {
	c := coordtest.NewCluster(t, 1)
	s := c.Leader(10 * time.Second)
	conn, err := net.DialTimeout("tcp", s.GRPCAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

// The server asks its clients for no HPACK dynamic table (tls.go,
// headerTableSize): an agent sends its headers once per connection, and
// the table only held them, with its lookup maps, for the connection's
// life. Read from the server's first SETTINGS frame, as a client sees it.
func TestServerAsksClientsForNoHeaderTable(t *testing.T) {
	fr := rawHTTP2(t)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS frame from the server: %v", err)
		}
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			continue
		}
		v, ok := sf.Value(http2.SettingHeaderTableSize)
		if !ok || v != 0 {
			t.Fatalf("server SETTINGS_HEADER_TABLE_SIZE = %d (sent %v), want 0", v, ok)
		}
		return
	}
}

// The server's flow-control windows are fixed (tls.go, flowWindow): with
// grpc-go's dynamic window, every DATA frame on a quiet connection was
// answered with a WINDOW_UPDATE and a BDP PING to be acked — per agent
// heartbeat, every 2 s, on every connection. A client sends a request's
// DATA frame, then a PING of its own: the server answers in order, so a
// BDP PING would come before the ACK of ours.
func TestServerSendsNoBDPPings(t *testing.T) {
	fr := rawHTTP2(t)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/rollwave.v1.AgentService/Session"},
		{":authority", "rollwave"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// An empty gRPC message (5-byte prefix): a heartbeat-sized DATA frame.
	if err := fr.WriteData(1, false, []byte{0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	ours := [8]byte{'r', 'o', 'l', 'l', 'w', 'a', 'v', 'e'}
	if err := fr.WritePing(false, ours); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no ACK of our PING: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.PingFrame:
			if f.IsAck() && f.Data == ours {
				return
			}
			if !f.IsAck() {
				t.Fatalf("the server sent a PING %x after a DATA frame (dynamic flow-control window on)", f.Data)
			}
		}
	}
}
