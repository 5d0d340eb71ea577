package coordinator

import (
	"strings"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// A client that reads slower than the agent sends: the session's receive
// loop never blocks; chunks beyond the buffer are dropped and counted,
// and the final chunk is kept even when the buffer is full.
func TestLogWaiterNeverBlocksTheSession(t *testing.T) {
	sess := &agentSession{hostID: "h1"}
	w := sess.addLogWaiter("r1")
	line := []*rollwavev1.LogLine{{Message: "x"}, {Message: "y"}}
	for i := 0; i < hostLogsBuffer+5; i++ {
		sess.deliverLog(&rollwavev1.LogChunk{RequestId: "r1", Lines: line})
	}
	sess.deliverLog(&rollwavev1.LogChunk{RequestId: "r1", Eof: true})
	// Chunks of requests nobody waits for are dropped.
	sess.deliverLog(&rollwavev1.LogChunk{RequestId: "gone", Lines: line})
	if n := len(w.ch); n != hostLogsBuffer {
		t.Fatalf("%d chunks buffered, want %d", n, hostLogsBuffer)
	}
	if got := w.takeDropped(); got != 5*len(line) {
		t.Fatalf("%d lines counted dropped, want %d", got, 5*len(line))
	}
	select {
	case <-w.ended:
	default:
		t.Fatal("the final chunk that found the buffer full was lost")
	}
	if !w.final.GetEof() {
		t.Fatalf("final chunk %v", w.final)
	}
	sess.removeLogWaiter("r1")
	sess.deliverLog(&rollwavev1.LogChunk{RequestId: "r1", Lines: line}) // no waiter: no panic, no block
}

func TestCheckHostLogsRequest(t *testing.T) {
	for _, tc := range []struct {
		req  *rollwavev1.HostLogsRequest
		want string // "" = valid
	}{
		{&rollwavev1.HostLogsRequest{Host: "h1", App: "api"}, ""},
		{&rollwavev1.HostLogsRequest{Host: "h1", App: "api", Lines: 10000, Slot: rollwavev1.Slot_SLOT_GREEN}, ""},
		{&rollwavev1.HostLogsRequest{App: "api"}, "the host is required"},
		{&rollwavev1.HostLogsRequest{Host: "h1"}, "the app is required"},
		{&rollwavev1.HostLogsRequest{Host: "h1", App: "api", Lines: 10001}, "lines 10001 is over the limit of 10000"},
		{&rollwavev1.HostLogsRequest{Host: "h1", App: "api", Slot: 9}, "slot 9"},
	} {
		err := checkHostLogsRequest(tc.req)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v refused: %v", tc.req, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error naming %q", tc.req, err, tc.want)
		}
	}
}
