package slot

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Sticky modes of weighted traffic (traffic.sticky).
const (
	StickyNone     = ""
	StickyClientIP = "client_ip"
	StickyCookie   = "cookie"
)

// BucketCookie is the cookie in which the HTTP proxy keeps a client's
// bucket when traffic.sticky = "cookie".
const BucketCookie = "rollwave_bucket"

// Weighting splits new traffic between the slot being pointed at (the new
// one) and the old one during weighted steps (traffic.steps).
type Weighting struct {
	// Old is the slot that keeps the rest of the traffic, on OldPort.
	Old     Name
	OldPort int
	// Weight is the percentage of new connections (tcp) or requests
	// (http) the new slot gets: 0 sends everything to Old, 100
	// everything to the new slot.
	Weight int
	// Sticky keeps a client on one version while the weight rises:
	// StickyNone, StickyClientIP or StickyCookie (http only).
	Sticky string
	// Shadow, with Weight 0 (a dark phase) on the HTTP proxy, mirrors a
	// sample of the old slot's requests to the new slot (shadow.go).
	Shadow *Shadow
}

// Validate reports a weighting the switch cannot apply.
func (w Weighting) Validate() error {
	switch {
	case w.Weight < 0 || w.Weight > 100:
		return fmt.Errorf("%w: weight %d: want 0-100", ErrSwitch, w.Weight)
	case w.Old != Blue && w.Old != Green:
		return fmt.Errorf("%w: old slot %q: want blue or green", ErrSwitch, w.Old)
	case w.OldPort <= 0 || w.OldPort > 65535:
		return fmt.Errorf("%w: old slot port %d out of range", ErrSwitch, w.OldPort)
	}
	switch w.Sticky {
	case StickyNone, StickyClientIP, StickyCookie:
	default:
		return fmt.Errorf("%w: traffic.sticky %q: want client_ip or cookie", ErrSwitch, w.Sticky)
	}
	if w.Shadow != nil && w.Weight != 0 {
		return fmt.Errorf("%w: shadow traffic needs weight 0 (a dark phase), got %d", ErrSwitch, w.Weight)
	}
	return w.Shadow.Validate()
}

// WeightedSwitch is a Switch that can split new traffic between two
// slots (the proxy, and the exec hook, which hands the weight to an
// external load balancer).
type WeightedSwitch interface {
	Switch
	// PointWeighted sends w.Weight percent of new traffic to slot (on
	// port) and the rest to w.Old. It returns once the split is in
	// effect. Point(slot) ends a split: everything goes to slot.
	PointWeighted(ctx context.Context, slot Name, port int, w Weighting) error
}

var (
	_ WeightedSwitch = (*Proxy)(nil)
	_ WeightedSwitch = (*ExecSwitch)(nil)
)

// picker turns a weight into a choice per connection or request. Every
// choice draws a bucket in [0, 100) and goes to the new slot when the
// bucket is below the weight, so a client whose bucket is fixed (sticky)
// moves to the new slot once, when the weight passes its bucket, and
// never back while the weight only rises.
//
// Hand-written rather than math/rand: a counter walked by a step coprime
// with 100 visits every bucket exactly once in any 100 consecutive
// choices, so the measured share is the weight to within one choice per
// hundred, with no random run of bad luck at 1 %.
type picker struct {
	n atomic.Uint64
}

// pickerStride is coprime with 100 and near 100/φ, so consecutive buckets
// are spread over the range (new-slot choices are evenly spaced).
const pickerStride = 61

// next is the bucket of the next non-sticky choice.
func (p *picker) next() int {
	return int((p.n.Add(1) * pickerStride) % 100)
}

// ipBucket is a client address's fixed bucket (FNV-1a of the IP, without
// the port: a client's connections come from many ports).
func ipBucket(remote string) int {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(host))
	return int(h.Sum32() % 100)
}

// cookieBucket reads a valid bucket cookie; false when absent or bad (a
// bad one is replaced, never trusted).
func cookieBucket(r *http.Request) (int, bool) {
	c, err := r.Cookie(BucketCookie)
	if err != nil {
		return 0, false
	}
	b, err := strconv.Atoi(c.Value)
	if err != nil || b < 0 || b > 99 {
		return 0, false
	}
	return b, true
}

// route is where the proxy sends new traffic: to b, or, during a weighted
// step, weight percent to b and the rest to old. Stored whole in one
// atomic pointer so a reader never sees half a switch.
type route struct {
	b      *backend
	old    *backend // nil: everything to b
	weight int
	sticky string
	// shadow mirrors a sample of old's requests to b (dark phase).
	shadow *shadower
}

// choose picks the backend for a bucket.
func (r *route) choose(bucket int) *backend {
	if r.old == nil || bucket < r.weight {
		return r.b
	}
	return r.old
}

// pickConn picks the backend of a new TCP connection from remote.
func (p *Proxy) pickConn(r *route, remote net.Addr) *backend {
	if r.old == nil {
		return r.b
	}
	if r.sticky == StickyClientIP && remote != nil {
		return r.choose(ipBucket(remote.String()))
	}
	return r.choose(p.picker.next())
}

// pickRequest picks the backend of an HTTP request; with sticky cookie it
// sets the bucket cookie on the answer when the client had none.
func (p *Proxy) pickRequest(r *route, w http.ResponseWriter, req *http.Request) *backend {
	if r.old == nil {
		return r.b
	}
	switch r.sticky {
	case StickyClientIP:
		return r.choose(ipBucket(req.RemoteAddr))
	case StickyCookie:
		b, ok := cookieBucket(req)
		if !ok {
			b = p.picker.next()
			http.SetCookie(w, &http.Cookie{Name: BucketCookie, Value: strconv.Itoa(b), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		}
		return r.choose(b)
	}
	return r.choose(p.picker.next())
}
