package coordinator

import (
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// hostSample is the host's latest heartbeat on its session with this
// server (kept in memory only, so only the leader has one), summarised
// for the operator API: resource use as sent, request stats with their
// 99th percentile instead of the histogram, the raw samples left out.
// nil when the host has no session here or has not sent a heartbeat yet.
func (s *Server) hostSample(host string) *rollwavev1.HostSample {
	hb, at, ok := s.AgentHeartbeat(host)
	if !ok || hb == nil {
		return nil
	}
	return sampleOf(hb, at)
}

// sampleOf summarises one heartbeat received at at. The heartbeat comes
// from an agent: a histogram that does not decode gives p99 0 (the
// orchestrator reports the bad stats itself), never an error here.
func sampleOf(hb *rollwavev1.Heartbeat, at time.Time) *rollwavev1.HostSample {
	out := &rollwavev1.HostSample{ReceivedUnixNano: at.UnixNano(), SentUnixNano: hb.GetTimeUnixNano()}
	if m := hb.GetHost(); m != nil {
		out.Host = proto.CloneOf(m)
	}
	for _, sl := range hb.GetSlots() {
		out.Slots = append(out.Slots, proto.CloneOf(sl))
	}
	for _, r := range hb.GetRequests() {
		sr := &rollwavev1.SlotRequests{App: r.GetApp(), Slot: r.GetSlot(), Version: r.GetVersion(), Protocol: r.GetProtocol(),
			Requests: r.GetRequests(), Errors: r.GetErrors(), UpstreamErrors: r.GetUpstreamErrors()}
		if h, err := health.LatencyHistogramFromSparse(r.GetLatencyBuckets(), r.GetLatencyCounts()); err == nil && h.Count() > 0 {
			sr.P99Ms = float64(h.Quantile(0.99)) / float64(time.Millisecond)
		}
		out.Requests = append(out.Requests, sr)
	}
	return out
}
