package relay

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// metaEvery is the least time between two sidecar saves while filling,
// and the most the sidecar lags behind.
const metaEvery = time.Second

// metaRecord is the sidecar's content. The file itself is the authority
// for size; the sidecar keeps what the file cannot say (how much of the
// head was dropped) and a size that survives a host crash losing the
// unsynced tail of the data.
type metaRecord struct {
	Size    int64 `json:"size"`
	Dropped int64 `json:"dropped"`
}

// sidecar writes a spool's metaRecord atomically: temp file, fsync,
// rename, fsync of the directory.
type sidecar struct {
	path  string
	mu    sync.Mutex  // serialises saves; taken before Spool.mu
	last  time.Time   // last save; under mu
	busy  atomic.Bool // a background save is scheduled or running
	dirty atomic.Bool // a chunk came since the last background save began
}

func (m *sidecar) load() (metaRecord, error) {
	var r metaRecord
	b, err := os.ReadFile(m.path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", m.path, err)
	}
	if r.Size < 0 || r.Dropped < 0 {
		return metaRecord{}, fmt.Errorf("%s: negative size or dropped: %w", m.path, ErrInvalid)
	}
	return r, nil
}

// saveSoon makes sure a save happens within metaEvery, at most one per
// metaEvery and never in Fill's goroutine, so Fill never waits for an
// fsync. A scheduled save reads the spool's state when it runs, so it
// covers every chunk before it; a chunk that comes while it runs marks the
// sidecar dirty and schedules the next one.
func (m *sidecar) saveSoon(s *Spool) {
	m.dirty.Store(true)
	if m.busy.Load() || !m.busy.CompareAndSwap(false, true) {
		return
	}
	m.mu.Lock()
	wait := metaEvery - time.Since(m.last)
	m.mu.Unlock()
	time.AfterFunc(max(wait, 0), func() {
		m.dirty.Store(false)
		if err := m.save(s, false); err != nil {
			s.log().WithError(err).Warn("relay: saving spool sidecar")
		}
		m.busy.Store(false)
		if m.dirty.Load() {
			m.saveSoon(s)
		}
	})
}

// save writes the spool's current size and dropped. Only Close (final)
// writes after the spool is closed, so nothing recreates the sidecar of a
// removed spool.
func (m *sidecar) save(s *Spool, final bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	r := metaRecord{Size: s.size, Dropped: s.dropped}
	closed := s.closed
	s.mu.Unlock()
	if closed && !final {
		return nil
	}
	m.last = time.Now()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeAtomic(m.path, b)
}

func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
