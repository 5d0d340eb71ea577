package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollwave/rollwave/internal/spec"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// eventsPageSize is how many events one ListEvents call asks for.
const eventsPageSize = 500

func newReleaseEventsCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events ID",
		Short: "Show a release's audit events with their evidence",
		Long: `Show every audit event of a release in order: who or what decided, on which
host and phase, why, and the evidence (gate readings and the like).`,
		Example: `  rollwave release events api-2.4.0
  rollwave release events api-2.4.0 -json`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := a.unary(cmd)
			defer cancel()
			events, err := listAllEvents(ctx, client, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONList(cmd.OutOrStdout(), "events", events)
			}
			t := newTable(cmd.OutOrStdout(), "SEQ", "TIME", "KIND", "ACTOR", "HOST", "PHASE", "MESSAGE", "EVIDENCE")
			for _, e := range events {
				t.row(uitoa(e.GetSeq()), timestamp(e.GetTimeUnixNano()), e.GetKind(), e.GetActor(), e.GetHost(),
					strconv.Itoa(int(e.GetPhase())), e.GetMessage(), evidenceString(e.GetEvidence()))
			}
			return t.flush()
		},
	}
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// listAllEvents pages through a release's events. It stops on a short page,
// or when a page does not advance the sequence number, so a server that
// ignores after_seq cannot make it loop.
func listAllEvents(ctx context.Context, client rollwavev1.OperatorServiceClient, id string) ([]*rollwavev1.Event, error) {
	var (
		all   []*rollwavev1.Event
		after uint64
	)
	for {
		resp, err := client.ListEvents(ctx, &rollwavev1.ListEventsRequest{ReleaseId: id, AfterSeq: after, Limit: eventsPageSize})
		if err != nil {
			return nil, err
		}
		page := resp.GetEvents()
		advanced := false
		for _, e := range page {
			if len(all) > 0 && e.GetSeq() <= after {
				continue // already have it
			}
			all = append(all, e)
			after, advanced = e.GetSeq(), true
		}
		if len(page) < eventsPageSize || !advanced {
			return all, nil
		}
	}
}

// eventLine prints one event on one line, for the appending -watch output.
func eventLine(w io.Writer, e *rollwavev1.Event) {
	parts := []string{timestamp(e.GetTimeUnixNano()), e.GetKind(), fmt.Sprintf("phase=%d", e.GetPhase())}
	if e.GetHost() != "" {
		parts = append(parts, "host="+e.GetHost())
	}
	if e.GetActor() != "" {
		parts = append(parts, "actor="+e.GetActor())
	}
	parts = append(parts, e.GetMessage())
	if ev := evidenceString(e.GetEvidence()); ev != "" {
		parts = append(parts, "["+ev+"]")
	}
	parts = slices.DeleteFunc(parts, func(s string) bool { return s == "" })
	fmt.Fprintln(w, spec.RedactURLsIn(strings.Join(parts, "  ")))
}
