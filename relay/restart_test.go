package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReopenKeepsSizeAndDroppedAndAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	const limit = 1 << 20
	s, err := OpenSpool(path, limit)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(3<<20, 6)
	if err := s.Fill(bytes.NewReader(data[:2<<20])); err != nil {
		t.Fatal(err)
	}
	s.Close() // the daemon goes away

	s, err = OpenSpool(path, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size() != 2<<20 || s.Dropped() != 1<<20 {
		t.Fatalf("reopened: Size %d Dropped %d", s.Size(), s.Dropped())
	}
	select {
	case <-s.Done():
		t.Fatal("a reopened spool is done")
	default:
	}
	if err := s.Fill(bytes.NewReader(data[2<<20:])); err != nil {
		t.Fatal(err)
	}
	if s.Size() != 3<<20 || s.Dropped() != 2<<20 {
		t.Fatalf("after Fill: Size %d Dropped %d", s.Size(), s.Dropped())
	}
	got := make([]byte, 1<<20)
	if n, err := s.ReadAt(context.Background(), got, 2<<20); n != len(got) || err != nil || !bytes.Equal(got, data[2<<20:]) {
		t.Fatalf("appended tail: %d, %v", n, err)
	}
	m, err := (&sidecar{path: path + ".meta"}).load()
	if err != nil || m.Size != 3<<20 || m.Dropped != 2<<20 {
		t.Fatalf("sidecar: %+v, %v", m, err)
	}
}

// A daemon killed between two sidecar saves: the file is ahead of the
// sidecar; it wins, and holes punched since count as dropped.
func TestReopenAfterCrashTrustsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	s, err := OpenSpool(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Fill(bytes.NewReader(pattern(4<<20, 7))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	writeMeta(t, path, metaRecord{Size: 100, Dropped: 0}) // a stale save

	s, err = OpenSpool(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size() != 4<<20 || s.Dropped() != 3<<20 {
		t.Fatalf("Size %d Dropped %d, want %d and %d", s.Size(), s.Dropped(), 4<<20, 3<<20)
	}
}

// A host crash lost the unsynced tail of the data but not the sidecar:
// offsets already handed out keep their meaning, new bytes come after.
func TestReopenAfterHostCrashKeepsOffsets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeMeta(t, path, metaRecord{Size: 16})
	s, err := OpenSpool(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size() != 16 {
		t.Fatalf("Size %d, want 16", s.Size())
	}
	if err := s.Fill(bytes.NewReader([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 32)
	n, err := s.ReadAt(context.Background(), got, 0)
	if err != nil || string(got[:n]) != "0123456789\x00\x00\x00\x00\x00\x00new" {
		t.Fatalf("got %q, %v", got[:n], err)
	}
}

func TestReopenWithoutSidecar(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".meta", []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSpool(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size() != 3 || s.Dropped() != 0 {
		t.Fatalf("Size %d Dropped %d", s.Size(), s.Dropped())
	}
}

func writeMeta(t *testing.T, path string, m metaRecord) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := os.WriteFile(path+".meta", b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// While filling, the sidecar follows Size without waiting for the end.
func TestSidecarSavedWhileFilling(t *testing.T) {
	s := newSpool(t, 0)
	pr, pw := io.Pipe()
	defer pw.Close()
	fillAsync(s, pr)
	meta := &sidecar{path: s.Path() + ".meta"}
	waitMeta := func(size int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if m, err := meta.load(); err == nil && m.Size == size {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sidecar never showed size %d", size)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	pw.Write([]byte("first"))
	waitMeta(5)
	pw.Write([]byte("second"))
	waitMeta(11) // at most a second later, though the source is still open
}
