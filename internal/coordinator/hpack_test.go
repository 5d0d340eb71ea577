package coordinator_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
)

// The server asks its clients for no HPACK dynamic table (tls.go,
// headerTableSize): an agent sends its headers once per connection, and
// the table only held them, with its lookup maps, for the connection's
// life. Read from the server's first SETTINGS frame, as a client sees it.
func TestServerAsksClientsForNoHeaderTable(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	s := c.Leader(10 * time.Second)
	conn, err := net.DialTimeout("tcp", s.GRPCAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
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
