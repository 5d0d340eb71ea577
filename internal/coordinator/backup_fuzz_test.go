package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rollwave/rollwave/internal/raftfsm"
)

// backupImage wraps payload in a well-formed backup file.
func backupImage(index uint64, payload []byte) []byte {
	var out bytes.Buffer
	out.WriteString(backupMagic)
	_ = binary.Write(&out, binary.BigEndian, uint16(backupVersion))
	_ = binary.Write(&out, binary.BigEndian, index)
	_ = binary.Write(&out, binary.BigEndian, uint64(len(payload)))
	out.Write(payload)
	sum := sha256.Sum256(out.Bytes())
	out.Write(sum[:])
	return out.Bytes()
}

// decodeBackup never panics; what it accepts is exactly the header's index
// and the declared number of payload bytes, and a scratch FSM restore of
// that payload (what restoreBackup does next) never panics either.
//
// With fixSum set the harness rewrites the trailing checksum first, so the
// fuzzer gets past it and explores the header and payload checks.
func FuzzBackupDecode(f *testing.F) {
	snap, err := os.ReadFile(filepath.Join("..", "raftfsm", "testdata", "snapshot-v1.bin"))
	if err != nil {
		f.Fatal(err)
	}
	good := backupImage(42, snap)
	f.Add(good, false)
	f.Add(good[:len(good)-1], false)
	f.Add(backupImage(0, nil), false)
	f.Add(backupImage(7, []byte("RWSNAP")), true)
	f.Add([]byte("RWBACKUP"), false)
	f.Add(bytes.Repeat([]byte{0xff}, 64), true)

	f.Fuzz(func(t *testing.T, b []byte, fixSum bool) {
		if fixSum && len(b) >= sha256.Size {
			b = bytes.Clone(b)
			sum := sha256.Sum256(b[:len(b)-sha256.Size])
			copy(b[len(b)-sha256.Size:], sum[:])
		}
		index, payload, err := decodeBackup(b)
		if err != nil {
			if !errors.Is(err, errBadBackup) {
				t.Fatalf("error does not wrap errBadBackup: %v", err)
			}
			if payload != nil || index != 0 {
				t.Fatalf("failed decode returned index %d and %d payload bytes", index, len(payload))
			}
			return
		}
		const header = len(backupMagic) + 2 + 8 + 8
		if want := binary.BigEndian.Uint64(b[10:18]); index != want {
			t.Fatalf("index %d, header says %d", index, want)
		}
		if n := binary.BigEndian.Uint64(b[18:26]); uint64(len(payload)) != n {
			t.Fatalf("payload has %d bytes, header says %d", len(payload), n)
		}
		if !bytes.Equal(payload, b[header:len(b)-sha256.Size]) {
			t.Fatal("payload is not the bytes between header and checksum")
		}
		if got := sha256.Sum256(b[:len(b)-sha256.Size]); !bytes.Equal(got[:], b[len(b)-sha256.Size:]) {
			t.Fatal("accepted a file whose checksum does not match")
		}
		scratch := raftfsm.New(nil)
		if err := scratch.Restore(io.NopCloser(bytes.NewReader(payload))); err == nil {
			if err := raftfsm.CheckInvariants(scratch.State()); err != nil {
				t.Fatalf("restored backup breaks invariants: %v", err)
			}
		}
	})
}
