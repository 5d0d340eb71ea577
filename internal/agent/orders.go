package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollwave/rollwave/internal/fsutil"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// orderStore keeps the newest assignment order per app on disk, so that a
// restarted agent still knows the health checks, bake settings and
// isolation timeout of a bake it was in the middle of.
type orderStore struct{ dir string }

func newOrderStore(dataDir string) (*orderStore, error) {
	dir := filepath.Join(dataDir, "orders")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return &orderStore{dir: dir}, nil
}

func (s *orderStore) path(app string) string { return filepath.Join(s.dir, app+".json") }

// save writes the order atomically: temp file, fsync, rename, fsync dir.
func (s *orderStore) save(o *rollwavev1.AssignmentOrder) error {
	b, err := protojson.Marshal(o)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.path(o.GetAssignment().GetApp()), b, 0o600)
}

func (s *orderStore) load(app string) (*rollwavev1.AssignmentOrder, error) {
	b, err := os.ReadFile(s.path(app))
	if err != nil {
		return nil, err
	}
	var o rollwavev1.AssignmentOrder
	if err := protojson.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("order record %s: %w", s.path(app), err)
	}
	return &o, nil
}

// all returns every stored order.
func (s *orderStore) all() map[string]*rollwavev1.AssignmentOrder {
	out := map[string]*rollwavev1.AssignmentOrder{}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		app, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if o, err := s.load(app); err == nil {
			out[app] = o
		}
	}
	return out
}
