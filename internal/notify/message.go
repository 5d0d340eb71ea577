package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Request headers. The signature covers the timestamp and the body, so a
// receiver that rejects old timestamps cannot be fed a replayed request.
const (
	// HeaderIdempotencyKey is the same for every delivery of one event, to
	// any target: a receiver drops a key it has seen (after a leader
	// change the new leader resends from the last recorded cursor).
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderTimestamp is the Unix time (seconds) the request was signed.
	HeaderTimestamp = "X-Rollwave-Timestamp"
	// HeaderSignature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
	HeaderSignature = "X-Rollwave-Signature"
	// HeaderEvent is the event's kind.
	HeaderEvent = "X-Rollwave-Event"
)

// IdempotencyKey is an event's key: its seq and time. The seq orders the
// cluster's events; the time tells apart events of two clusters (or of a
// cluster rebuilt from scratch) that share a seq.
func IdempotencyKey(e *rollwavev1.Event) string {
	return fmt.Sprintf("rollwave-%d-%d", e.GetSeq(), e.GetTimeUnixNano())
}

// Sign returns the X-Rollwave-Signature value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header against the timestamp header and body
// in constant time: what a receiver does (tests, and the example in
// docs/operations.md). It does not judge the timestamp's age.
func Verify(secret []byte, timestamp, signature string, body []byte) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	want := Sign(secret, time.Unix(ts, 0), body)
	return hmac.Equal([]byte(want), []byte(signature))
}

// Payload is the JSON body of a webhook delivery.
type Payload struct {
	// ID is the idempotency key (also in the Idempotency-Key header).
	ID       string            `json:"id"`
	Target   string            `json:"target"`
	Seq      uint64            `json:"seq"`
	Kind     string            `json:"kind"`
	Time     time.Time         `json:"time"`
	Release  *PayloadRelease   `json:"release,omitempty"`
	Phase    int32             `json:"phase"`
	Host     string            `json:"host,omitempty"`
	Actor    string            `json:"actor,omitempty"`
	Message  string            `json:"message"`
	Evidence map[string]string `json:"evidence,omitempty"`
}

// PayloadRelease is the release an event belongs to, as it stands when the
// event is sent (it may have moved on since the event).
type PayloadRelease struct {
	ID      string `json:"id"`
	App     string `json:"app,omitempty"`
	Version string `json:"version,omitempty"`
	State   string `json:"state,omitempty"`
	// URL is the release's dashboard page when ui_url is configured.
	URL string `json:"url,omitempty"`
}

// releaseURL is <ui>/ui/releases/<id>, or "" without a ui URL.
func releaseURL(ui, id string) string {
	if ui == "" || id == "" {
		return ""
	}
	return strings.TrimRight(ui, "/") + "/ui/releases/" + url.PathEscape(id)
}

// stateName turns RELEASE_STATE_ROLLED_BACK into rolled_back.
func stateName(s rollwavev1.ReleaseState) string {
	n := s.String()
	if _, after, ok := strings.Cut(n, "STATE_"); ok {
		n = after
	}
	return strings.ToLower(n)
}

// payload builds the webhook body of e. rel may be nil (an event of no
// release, or one retention dropped). Free text passes through URL
// credential redaction, as everything the coordinator shows people does.
func payload(target, ui string, e *rollwavev1.Event, rel *rollwavev1.Release) Payload {
	p := Payload{
		ID: IdempotencyKey(e), Target: target, Seq: e.GetSeq(), Kind: e.GetKind(),
		Time: time.Unix(0, e.GetTimeUnixNano()).UTC(), Phase: e.GetPhase(), Host: e.GetHost(), Actor: e.GetActor(),
		Message: spec.RedactURLsIn(e.GetMessage()),
	}
	if len(e.GetEvidence()) > 0 {
		p.Evidence = make(map[string]string, len(e.GetEvidence()))
		for k, v := range e.GetEvidence() {
			p.Evidence[k] = spec.RedactURLsIn(v)
		}
	}
	if id := e.GetReleaseId(); id != "" {
		p.Release = &PayloadRelease{ID: id, URL: releaseURL(ui, id)}
		if rel != nil {
			p.Release.App, p.Release.Version, p.Release.State = rel.GetSpec().GetApp(), rel.GetSpec().GetVersion(), stateName(rel.GetState())
		}
	}
	return p
}

// Body returns the request body for a target type: the Payload as JSON
// for a webhook, {"text": ...} for Slack.
func body(typ string, p Payload) ([]byte, error) {
	if typ == spec.NotifySlack {
		return json.Marshal(map[string]string{"text": SlackText(p)})
	}
	return json.Marshal(p)
}

// Bounds of a Slack line: a few readings, not the whole evidence map.
const (
	slackMaxEvidence = 6
	slackMaxValue    = 80
	slackMaxMessage  = 300
)

// SlackText is one readable Slack line (mrkdwn): a mark for the outcome,
// app and version, the release, the event, its message, a summary of the
// evidence and a link to the release when the dashboard's URL is known.
func SlackText(p Payload) string {
	var b strings.Builder
	b.WriteString(slackMark(p.Kind))
	b.WriteByte(' ')
	if r := p.Release; r != nil {
		if r.App != "" {
			fmt.Fprintf(&b, "*%s %s* ", slackEscape(r.App), slackEscape(r.Version))
		}
		fmt.Fprintf(&b, "release `%s`: ", slackEscape(r.ID))
	}
	fmt.Fprintf(&b, "*%s*", slackEscape(p.Kind))
	if p.Release != nil && (strings.HasPrefix(p.Kind, "phase.") || strings.HasPrefix(p.Kind, "gate.") || strings.HasPrefix(p.Kind, "hosts.")) {
		fmt.Fprintf(&b, " (phase %d)", p.Phase)
	}
	if p.Host != "" {
		fmt.Fprintf(&b, " on %s", slackEscape(p.Host))
	}
	if m := p.Message; m != "" {
		b.WriteString(" — ")
		b.WriteString(slackEscape(truncate(m, slackMaxMessage)))
	}
	if len(p.Evidence) > 0 {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range p.Evidence {
				if !yield(k) {
					return
				}
			}
		})
		var parts []string
		for _, k := range keys {
			if len(parts) == slackMaxEvidence {
				parts = append(parts, fmt.Sprintf("… %d more", len(keys)-slackMaxEvidence))
				break
			}
			parts = append(parts, slackEscape(k)+"="+slackEscape(truncate(p.Evidence[k], slackMaxValue)))
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(parts, ", "))
	}
	if p.Release != nil && p.Release.URL != "" {
		fmt.Fprintf(&b, " <%s|open release>", p.Release.URL)
	}
	return b.String()
}

func slackMark(kind string) string {
	switch {
	case strings.HasSuffix(kind, ".failed"), strings.HasSuffix(kind, ".rolled_back"), strings.HasSuffix(kind, ".rolling_back"),
		strings.HasSuffix(kind, ".reverted"), kind == "revert.ordered", kind == "host.unreachable":
		return ":rotating_light:"
	case strings.HasSuffix(kind, ".succeeded"), strings.HasSuffix(kind, ".verified"), strings.HasSuffix(kind, ".passed"):
		return ":white_check_mark:"
	case strings.HasSuffix(kind, ".awaiting_approval"), strings.HasSuffix(kind, ".inconclusive"), strings.HasSuffix(kind, ".paused"),
		strings.HasSuffix(kind, ".held"), strings.HasSuffix(kind, ".held_control_plane_down"):
		return ":warning:"
	}
	return ":information_source:"
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// (links, mentions), so event text cannot ping @channel or forge a link.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// RedactURL is how a target's URL is shown (status, logs): scheme and
// host, the first path segment, and "…" for the rest (a Slack webhook's
// path is its secret); no credentials, no query.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	out := u.Scheme + "://" + u.Host
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if len(segs) > 0 && segs[0] != "" {
		out += "/" + segs[0]
		if len(segs) > 1 {
			out += "/…"
		}
	}
	if u.RawQuery != "" {
		out += "?…"
	}
	return out
}
