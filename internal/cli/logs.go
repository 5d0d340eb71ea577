package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Bounds of `rollwave logs` (the agent enforces them too).
const (
	defaultLogLines = 200
	maxLogLines     = 10000
)

// logTimeLayout is the TIME column: UTC with milliseconds.
const logTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// logJSONLine is one line of `rollwave logs -json`.
type logJSONLine struct {
	Host         string `json:"host"`
	App          string `json:"app"`
	Slot         string `json:"slot"`
	Version      string `json:"version"`
	Time         string `json:"time"`
	TimeUnixNano int64  `json:"time_unix_nano"`
	Message      string `json:"message"`
	Truncated    bool   `json:"truncated"`
	Notice       bool   `json:"notice"`
}

func newLogsCommand(a *app) *cobra.Command {
	var (
		slotName string
		lines    int
		follow   bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "logs HOST APP",
		Short: "Show the output of an app's slot on a host",
		Long: `Show the last lines an app's slot wrote on one host: its systemd journal
(unit rollwave-APP-SLOT.service) under the systemd driver, its log file
(slot.log in the slot directory) under the process driver. The slot is the
one serving traffic unless -slot names the other.

Lines print as "TIME MESSAGE", TIME in UTC; lines from the process driver's
file have no time and print alone. Lines in brackets starting "[rollwave:"
come from rollwave, not the app (lines dropped by the rate limit, the end of
a follow). A line over 16 KiB is cut and ends in "[truncated]".

-f keeps printing new lines until interrupted (Ctrl-C, exit 0). The agent
sends at most 200 new lines a second (bursts of 1,000) and ends a follow
after an hour; a host streams at most 4 logs at once. Without -f, -timeout
bounds the whole read.

-json prints one object per line: host, app, slot, version, time,
time_unix_nano (0 when unknown), message, truncated, notice.

Needs an ACL token with role read when ACLs are on.`,
		Example: `  rollwave logs web-07 api
  rollwave logs web-07 api -slot green -n 50
  rollwave logs web-07 api -f
  rollwave logs web-07 api -json | jq -r .message`,
		Args: exactArgs("HOST", "APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &rollwavev1.HostLogsRequest{Host: args[0], App: args[1], Follow: follow}
			switch slotName {
			case "":
			case "blue":
				req.Slot = rollwavev1.Slot_SLOT_BLUE
			case "green":
				req.Slot = rollwavev1.Slot_SLOT_GREEN
			default:
				return usageErrorf("invalid -slot %q: want blue or green (default: the slot serving traffic)", slotName)
			}
			if lines < 1 || lines > maxLogLines {
				return usageErrorf("invalid -n %d: want 1 to %d", lines, maxLogLines)
			}
			req.Lines = uint32(lines)
			if req.Host == "" || req.App == "" {
				return usageErrorf("HOST and APP must not be empty")
			}
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.timeout)
				defer cancel()
			}
			stream, err := client.HostLogs(ctx, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var slot, version string
			for {
				resp, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					if follow && ctx.Err() != nil && cmd.Context().Err() == nil {
						return nil // interrupted: the normal end of a follow
					}
					return err
				}
				if resp.GetSlot() != rollwavev1.Slot_SLOT_UNSPECIFIED {
					slot, version = slotLabel(resp.GetSlot()), resp.GetVersion()
					if !asJSON {
						fmt.Fprintf(cmd.ErrOrStderr(), "==> host %s, app %s, slot %s (version %s)\n", req.Host, req.App, slot, versionOrNone(version))
					}
				}
				for _, l := range resp.GetLines() {
					if asJSON {
						if err := writeValue(out, logJSONLine{Host: req.Host, App: req.App, Slot: slot, Version: version,
							Time: logTime(l.GetTimeUnixNano()), TimeUnixNano: l.GetTimeUnixNano(), Message: l.GetMessage(),
							Truncated: l.GetTruncated(), Notice: l.GetNotice()}, false); err != nil {
							return err
						}
						continue
					}
					if err := printLogLine(out, l); err != nil {
						return err
					}
				}
			}
		},
	}
	cmd.Flags().StringVar(&slotName, "slot", "", "blue or green (default: the slot serving traffic)")
	cmd.Flags().IntVarP(&lines, "lines", "n", defaultLogLines, fmt.Sprintf("how many of the last lines to show (1 to %d)", maxLogLines))
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// printLogLine prints "TIME MESSAGE", or MESSAGE alone when the time is
// unknown.
func printLogLine(w io.Writer, l *rollwavev1.LogLine) error {
	msg := l.GetMessage()
	if l.GetTruncated() {
		msg += " [truncated]"
	}
	var err error
	if t := logTime(l.GetTimeUnixNano()); t != "" {
		_, err = fmt.Fprintf(w, "%s %s\n", t, msg)
	} else {
		_, err = fmt.Fprintln(w, msg)
	}
	return err
}

func logTime(unixNano int64) string {
	if unixNano == 0 {
		return ""
	}
	return time.Unix(0, unixNano).UTC().Format(logTimeLayout)
}

func slotLabel(s rollwavev1.Slot) string {
	switch s {
	case rollwavev1.Slot_SLOT_BLUE:
		return "blue"
	case rollwavev1.Slot_SLOT_GREEN:
		return "green"
	}
	return ""
}
