package metastore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mustOpen opens stateDir with kind and closes it when the test ends.
func mustOpen(t *testing.T, stateDir, kind string) Store {
	t.Helper()
	st, closeFn, err := Open(stateDir, kind)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeFn() })
	return st
}

func readKindFile(t *testing.T, stateDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestOpenRecordsKindAndKeepsData(t *testing.T) {
	for _, tc := range []struct{ kind, want, dir string }{
		{"", "fs", "meta"},
		{"fs", "fs", "meta"},
		{"leveldb", "leveldb", "meta.leveldb"},
	} {
		t.Run("kind="+tc.kind, func(t *testing.T) {
			sd := t.TempDir()
			st, closeFn, err := Open(sd, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Save("sandboxes/s1/config", []byte("c")); err != nil {
				t.Fatal(err)
			}
			if err := closeFn(); err != nil {
				t.Fatal(err)
			}
			if got := readKindFile(t, sd); got != tc.want {
				t.Fatalf("store file = %q, want %q", got, tc.want)
			}
			if fi, err := os.Stat(filepath.Join(sd, tc.dir)); err != nil || !fi.IsDir() {
				t.Fatalf("data dir %s: %v", tc.dir, err)
			}
			st = mustOpen(t, sd, tc.kind)
			if got, err := st.Load("sandboxes/s1/config"); err != nil || string(got) != "c" {
				t.Fatalf("Load after reopen = %q, %v", got, err)
			}
		})
	}
}

func TestOpenRefusesTheOtherKind(t *testing.T) {
	for _, tc := range []struct{ made, open, other string }{
		{"fs", "leveldb", "leveldb"},
		{"leveldb", "", "fs"},
		{"leveldb", "fs", "fs"},
	} {
		t.Run(tc.made+"->"+tc.open, func(t *testing.T) {
			sd := t.TempDir()
			_, closeFn, err := Open(sd, tc.made)
			if err != nil {
				t.Fatal(err)
			}
			closeFn()
			_, _, err = Open(sd, tc.open)
			if !errors.Is(err, ErrWrongKind) {
				t.Fatalf("Open = %v, want ErrWrongKind", err)
			}
			want := "state directory " + sd + " was made with --store " + tc.made +
				"; start with --store " + tc.made +
				", or convert it: katafs store migrate --state-dir " + sd + " --to " + tc.other
			if err.Error() != want {
				t.Fatalf("message:\n got %s\nwant %s", err, want)
			}
			// The refusal changes nothing: the recorded kind still opens.
			mustOpen(t, sd, tc.made)
		})
	}
}

func TestOpenOldStateDirCountsAsFS(t *testing.T) {
	sd := t.TempDir()
	// A state directory from before the store file: just meta/.
	os.MkdirAll(filepath.Join(sd, "meta", "sandboxes", "s1"), 0o700)
	os.WriteFile(filepath.Join(sd, "meta", "sandboxes", "s1", "config"), []byte("old"), 0o600)

	if _, _, err := Open(sd, "leveldb"); !errors.Is(err, ErrWrongKind) ||
		!strings.Contains(err.Error(), "made with --store fs") {
		t.Fatalf("Open leveldb = %v, want refusal naming fs", err)
	}
	st := mustOpen(t, sd, "")
	if got, err := st.Load("sandboxes/s1/config"); err != nil || string(got) != "old" {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if got := readKindFile(t, sd); got != "fs" {
		t.Fatalf("store file = %q, want fs", got)
	}
}

func TestOpenUnknownKind(t *testing.T) {
	sd := t.TempDir()
	_, _, err := Open(sd, "bolt")
	if err == nil || !strings.Contains(err.Error(), `"bolt"`) || !strings.Contains(err.Error(), "fs, leveldb") {
		t.Fatalf("Open = %v, want an error listing the kinds", err)
	}
	if _, err := os.Stat(filepath.Join(sd, "store")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unknown kind recorded something: %v", err)
	}
}

func TestOpenBadStoreFile(t *testing.T) {
	sd := t.TempDir()
	os.WriteFile(filepath.Join(sd, "store"), []byte("bolt\n"), 0o600)
	if _, _, err := Open(sd, "fs"); err == nil || !strings.Contains(err.Error(), "fs, leveldb") {
		t.Fatalf("Open = %v, want an error about the store file", err)
	}
}

func TestOpenLocksStateDir(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) {
			sd := t.TempDir()
			_, closeFn, err := Open(sd, kind)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Open(sd, kind); err == nil || !strings.Contains(err.Error(), "in use") {
				t.Fatalf("second Open = %v, want in use", err)
			}
			if _, err := Migrate(sd, "fs"); err == nil || !strings.Contains(err.Error(), "in use") {
				t.Fatalf("Migrate while open = %v, want in use", err)
			}
			closeFn()
			mustOpen(t, sd, kind)
		})
	}
}
