package extgate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rollwave/rollwave/internal/health"
)

// verdictReply is what an http gate answers: the shape of Flagger's and
// Argo Rollouts' web metrics reduced to a verdict.
type verdictReply struct {
	Verdict string   `json:"verdict"`
	Reason  string   `json:"reason"`
	Value   *float64 `json:"value,omitempty"`
}

// maxReason bounds the reason copied into an event.
const maxReason = 512

func (g *Gate) readHTTP(ctx context.Context, c Context, res *Result) error {
	res.Evidence["url"] = g.spec.GetUrl()
	body, err := json.Marshal(c)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.spec.GetUrl(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", g.spec.GetUrl(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST %s: reading the answer: %w", g.spec.GetUrl(), err)
	}
	res.Evidence["status"] = fmt.Sprint(resp.StatusCode)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: status %d, want 2xx", g.spec.GetUrl(), resp.StatusCode)
	}
	var reply verdictReply
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&reply); err != nil {
		return fmt.Errorf("POST %s: answer is not {\"verdict\": \"pass\"|\"fail\"|\"inconclusive\", \"reason\": …}: %v: %w", g.spec.GetUrl(), err, errInconclusive)
	}
	reason := reply.Reason
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	res.Evidence["verdict"], res.Evidence["reason"] = reply.Verdict, reason
	if reply.Value != nil {
		res.Value = *reply.Value
		res.Evidence["value"] = fmtFloat(*reply.Value)
	}
	switch strings.ToLower(reply.Verdict) {
	case "pass":
		res.Verdict = health.Pass
	case "fail":
		res.Verdict = health.Fail
	case "inconclusive":
		res.Verdict = health.Inconclusive
	default:
		return fmt.Errorf("POST %s: verdict %q, want pass, fail or inconclusive: %w", g.spec.GetUrl(), reply.Verdict, errInconclusive)
	}
	res.Detail = fmt.Sprintf("%s %s: %s", g.name, strings.ToLower(reply.Verdict), reason)
	return nil
}

// unwrapURLError drops url.Error's "Post URL:" prefix, which the caller
// already says.
func unwrapURLError(err error) error {
	type wrapper interface{ Unwrap() error }
	if ue, ok := err.(wrapper); ok && strings.HasPrefix(err.Error(), "Post ") {
		return ue.Unwrap()
	}
	return err
}
