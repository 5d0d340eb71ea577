package gossipbench

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	metrics "github.com/hashicorp/go-metrics/compat"
)

// counters are memberlist's go-metrics output for every pool of this
// process, summed. go-metrics has one process-wide sink (NewGlobal): the
// pools cannot be told apart, so per-member figures are totals divided by
// the pool count. Only the keys the benchmark reads are kept.
type counters struct {
	udpSent, udpRecv, tcpSent atomic.Int64 // bytes
	tcpConnect                atomic.Int64 // outgoing streams (push/pull, TCP pings, joins)
	suspect, dead             atomic.Int64 // per pool that marked a member suspect / dead or left
}

type countersSnap struct {
	UDPSent, UDPRecv, TCPSent, TCPConnect, Suspect, Dead int64
}

func (c *counters) snap() countersSnap {
	return countersSnap{c.udpSent.Load(), c.udpRecv.Load(), c.tcpSent.Load(), c.tcpConnect.Load(), c.suspect.Load(), c.dead.Load()}
}

func (a countersSnap) sub(b countersSnap) countersSnap {
	return countersSnap{a.UDPSent - b.UDPSent, a.UDPRecv - b.UDPRecv, a.TCPSent - b.TCPSent,
		a.TCPConnect - b.TCPConnect, a.Suspect - b.Suspect, a.Dead - b.Dead}
}

// sink implements go-metrics' MetricSink over counters; it never blocks
// (memberlist calls it on its packet paths).
type sink struct{ c *counters }

var (
	installOnce sync.Once
	global      = &counters{}
)

// installSink makes memberlist's metrics in this process land in global.
func installSink() *counters {
	installOnce.Do(func() {
		conf := metrics.DefaultConfig("")
		conf.EnableHostname = false
		conf.EnableRuntimeMetrics = false // no sampling goroutine
		conf.EnableServiceLabel = false
		_, _ = metrics.NewGlobal(conf, sink{global})
	})
	return global
}

func key(k []string) string { return strings.Join(k, ".") }

func (s sink) SetGauge(k []string, v float32)                        { s.SetGaugeWithLabels(k, v, nil) }
func (s sink) SetGaugeWithLabels([]string, float32, []metrics.Label) {}
func (s sink) EmitKey([]string, float32)                             {}
func (s sink) IncrCounter(k []string, v float32)                     { s.IncrCounterWithLabels(k, v, nil) }
func (s sink) IncrCounterWithLabels(k []string, v float32, _ []metrics.Label) {
	var c *atomic.Int64
	switch key(k) {
	case "memberlist.udp.sent":
		c = &s.c.udpSent
	case "memberlist.udp.received":
		c = &s.c.udpRecv
	case "memberlist.tcp.sent":
		c = &s.c.tcpSent
	case "memberlist.tcp.connect":
		c = &s.c.tcpConnect
	case "memberlist.msg.suspect":
		c = &s.c.suspect
	case "memberlist.msg.dead":
		c = &s.c.dead
	default:
		return
	}
	c.Add(int64(v))
}
func (s sink) AddSample([]string, float32)                            {}
func (s sink) AddSampleWithLabels([]string, float32, []metrics.Label) {}

// refuteCounter is the pools' slog handler: it keeps only WARN and above,
// plus memberlist's "Failed UDP ping" DEBUG lines (a probe whose direct ack
// did not come within ProbeTimeout; counted in probeTimeouts), and counts
// memberlist's "Refuting a suspect/dead message" lines. A pool
// refutes when it hears that it is suspected or declared dead while it is
// alive, so each refutation is one false suspicion of a live member.
// rollwave's log adapter rate-limits repeated WARN lines per pool and
// reports the number it held back on the next one it lets through; that
// number is added. Other WARN/ERR lines are counted and the first few kept
// for the report.
type refuteCounter struct {
	suspect, dead, other atomic.Int64
	probeTimeouts        atomic.Int64
	mu                   sync.Mutex
	samples              []string
}

// Enabled lets DEBUG through for the probe timeouts: memberlist formats
// every line anyway, and its DEBUG/INFO lines are a few per member per
// minute (push/pulls, streams) plus one per failed probe.
func (h *refuteCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }

func (h *refuteCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		if strings.HasPrefix(r.Message, "Failed UDP ping") {
			h.probeTimeouts.Add(1)
		}
		return nil
	}
	n := int64(1)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "similar_lines_suppressed" {
			n += a.Value.Int64()
		}
		return true
	})
	switch {
	case strings.HasPrefix(r.Message, "Refuting a suspect message"):
		h.suspect.Add(n)
	case strings.HasPrefix(r.Message, "Refuting a dead message"):
		h.dead.Add(n)
	default:
		h.other.Add(n)
		h.mu.Lock()
		if len(h.samples) < 5 {
			h.samples = append(h.samples, r.Message)
		}
		h.mu.Unlock()
	}
	return nil
}

func (h *refuteCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *refuteCounter) WithGroup(string) slog.Handler      { return h }
