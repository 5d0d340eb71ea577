package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/cobra"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// restoreChunkSize is how much of a snapshot file one SnapshotChunk carries,
// well under gRPC's default 4 MiB message limit.
const restoreChunkSize = 256 << 10

func newSnapshotSaveCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of the replicated state to FILE",
		Long: `Stream a snapshot of the coordinator cluster's replicated state into FILE.

The file is written next to FILE under a temporary name, synced and renamed
into place, so FILE is either the complete snapshot or untouched. The stream
has no -timeout: large states take as long as they take; interrupt to stop.`,
		Example: `  rollwave operator snapshot save backup.snap`,
		Args:    exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			stream, err := client.SnapshotSave(ctx, &rollwavev1.SnapshotSaveRequest{})
			if err != nil {
				return err
			}
			n, err := writeFileAtomic(args[0], func(w io.Writer) (int64, error) {
				var total int64
				for {
					chunk, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						return total, nil
					}
					if err != nil {
						return total, err
					}
					k, err := w.Write(chunk.GetData())
					total += int64(k)
					if err != nil {
						return total, err
					}
				}
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Saved snapshot to %s (%d bytes)\n", args[0], n)
			return err
		},
	}
}

// writeFileAtomic writes path through fill: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced so the
// rename survives a crash. On any error the temporary file is removed and
// path is left as it was.
func writeFileAtomic(path string, fill func(io.Writer) (int64, error)) (n int64, err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if n, err = fill(tmp); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, err
	}
	if d, derr := os.Open(dir); derr == nil {
		err = d.Sync()
		_ = d.Close()
	}
	return n, err
}

func newSnapshotRestoreCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore the replicated state from a snapshot FILE",
		Long: `Stream a snapshot FILE (from "rollwave operator snapshot save") to the
coordinator cluster, replacing its replicated state. Prints the raft index the
restore was applied at.`,
		Example: `  rollwave operator snapshot restore backup.snap`,
		Args:    exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			client, done, err := a.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			n, resp, err := restoreSnapshot(ctx, client, f)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Restored snapshot %s (%d bytes) at index %d\n", args[0], n, resp.GetIndex())
			return err
		},
	}
}

func restoreSnapshot(ctx context.Context, client rollwavev1.OperatorServiceClient, r io.Reader) (int64, *rollwavev1.SnapshotRestoreResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if we leave early
	stream, err := client.SnapshotRestore(ctx)
	if err != nil {
		return 0, nil, err
	}
	var total int64
	for {
		// A fresh buffer per chunk: grpc may still hold the previous message
		// (stats handlers read it lazily), so it must not be overwritten.
		buf := make([]byte, restoreChunkSize)
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			if err := stream.Send(&rollwavev1.SnapshotChunk{Data: buf[:k]}); err != nil {
				if errors.Is(err, io.EOF) {
					// The server ended the stream; its reason comes from CloseAndRecv.
					_, err = stream.CloseAndRecv()
				}
				return total, nil, err
			}
			total += int64(k)
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return total, nil, rerr
		}
	}
	resp, err := stream.CloseAndRecv()
	return total, resp, err
}
