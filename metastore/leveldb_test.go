package metastore

import (
	"testing"
)

func newTestLevelDB(t *testing.T, dir string) *LevelDB {
	t.Helper()
	s, err := NewLevelDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLevelDBConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) Store { return newTestLevelDB(t, t.TempDir()) })
}

func TestLevelDBReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, err := NewLevelDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Save("sandboxes/s1/config", []byte("c"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = newTestLevelDB(t, dir)
	if got, err := s.Load("sandboxes/s1/config"); err != nil || string(got) != "c" {
		t.Fatalf("Load after reopen = %q, %v", got, err)
	}
}

func TestLevelDBDeleteLeavesSiblings(t *testing.T) {
	s := newTestLevelDB(t, t.TempDir())
	// "a-b" and "a0" sort around "a/..." but are not below "a".
	for _, k := range []string{"a/x", "a/y/z", "a-b", "a0"} {
		s.Save(k, []byte(k))
	}
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a-b", "a0"} {
		if _, err := s.Load(k); err != nil {
			t.Errorf("sibling %s: %v", k, err)
		}
	}
	if names, _ := s.List(""); len(names) != 2 {
		t.Fatalf("List = %v", names)
	}
}
