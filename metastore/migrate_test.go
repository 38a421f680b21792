package metastore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// migrateData is nested keys with text and binary values.
var migrateData = map[string][]byte{
	"sandboxes/s1/config":                []byte(`{"id":"s1"}`),
	"sandboxes/s1/containers/c1/config":  []byte(`{"id":"c1"}`),
	"sandboxes/s1/containers/c1/state":   {0, 1, 2, 255, 0, '/', '\n'},
	"sandboxes/s1/containers/c2/process": bytes.Repeat([]byte{0xff, 0, 0x80}, 10000),
	"sandboxes/s2/config":                {},
	"top":                                []byte("t"),
	"a-b/x":                              []byte("sorts between a and a/"),
}

func fill(t *testing.T, sd, kind string) {
	t.Helper()
	st, closeFn, err := Open(sd, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	for k, v := range migrateData {
		if err := st.Save(k, v); err != nil {
			t.Fatal(err)
		}
	}
}

// checkData opens sd as kind and checks it holds exactly migrateData.
func checkData(t *testing.T, sd, kind string) {
	t.Helper()
	st, closeFn, err := Open(sd, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	keys, err := walk(st, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(migrateData) {
		t.Fatalf("keys = %v, want %d", keys, len(migrateData))
	}
	for k, want := range migrateData {
		got, err := st.Load(k)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Load(%s) = %d bytes, %v; want %d bytes", k, len(got), err, len(want))
		}
	}
}

func glob(t *testing.T, sd, pattern string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(sd, pattern))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestMigrateBothWays(t *testing.T) {
	for _, tc := range []struct{ from, to string }{{"fs", "leveldb"}, {"leveldb", "fs"}} {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			sd := t.TempDir()
			fill(t, sd, tc.from)
			n, err := Migrate(sd, tc.to)
			if err != nil || n != len(migrateData) {
				t.Fatalf("Migrate = %d, %v; want %d", n, err, len(migrateData))
			}
			if got := readKindFile(t, sd); got != tc.to {
				t.Fatalf("store file = %q, want %q", got, tc.to)
			}
			checkData(t, sd, tc.to)
			if _, _, err := Open(sd, tc.from); !errors.Is(err, ErrWrongKind) {
				t.Fatalf("Open(%s) after migrate = %v, want ErrWrongKind", tc.from, err)
			}
			// The old data is moved aside, whole, not deleted.
			old := glob(t, sd, "meta.old-"+tc.from+"-*")
			if len(old) != 1 {
				t.Fatalf("old data dirs = %v", old)
			}
			oldKeys := oldStoreKeys(t, filepath.Join(sd, old[0]), tc.from)
			if len(oldKeys) != len(migrateData) {
				t.Fatalf("old store keys = %v", oldKeys)
			}
			if _, err := os.Stat(dataDir(sd, tc.from)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("old data dir still in place: %v", err)
			}

			// A rerun is refused and changes nothing.
			if _, err := Migrate(sd, tc.to); !errors.Is(err, ErrWrongKind) ||
				!strings.Contains(err.Error(), "already uses --store "+tc.to) {
				t.Fatalf("rerun = %v, want refusal", err)
			}
			checkData(t, sd, tc.to)

			// And back again.
			if n, err := Migrate(sd, tc.from); err != nil || n != len(migrateData) {
				t.Fatalf("Migrate back = %d, %v", n, err)
			}
			checkData(t, sd, tc.from)
			if old := glob(t, sd, "meta.old-*"); len(old) != 2 {
				t.Fatalf("old data dirs = %v, want one per kind", old)
			}
		})
	}
}

func oldStoreKeys(t *testing.T, dir, kind string) []string {
	t.Helper()
	st, closeFn, err := openKind(filepath.Dir(dir), kind, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	keys, err := walk(st, "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestMigrateRerunAfterCrash stops Migrate after each step, as a crash
// there would, and checks that the state directory still opens with all
// data and that a rerun finishes the job.
func TestMigrateRerunAfterCrash(t *testing.T) {
	for _, kinds := range [][2]string{{"fs", "leveldb"}, {"leveldb", "fs"}} {
		from, to := kinds[0], kinds[1]
		for _, step := range []string{"copied", "renamed", "recorded"} {
			t.Run(fmt.Sprintf("%s->%s/%s", from, to, step), func(t *testing.T) {
				sd := t.TempDir()
				fill(t, sd, from)
				crash := errors.New("crash")
				migrateStep = func(s string) error {
					if s == step {
						return crash
					}
					return nil
				}
				_, err := Migrate(sd, to)
				migrateStep = func(string) error { return nil }
				if !errors.Is(err, crash) {
					t.Fatalf("Migrate = %v, want the crash", err)
				}

				if step != "recorded" {
					// Not recorded yet: the old store is the store.
					checkData(t, sd, from)
					if n, err := Migrate(sd, to); err != nil || n != len(migrateData) {
						t.Fatalf("rerun = %d, %v", n, err)
					}
				} else if _, err := Migrate(sd, to); !errors.Is(err, ErrWrongKind) {
					t.Fatalf("rerun after the record = %v, want refusal", err)
				}
				checkData(t, sd, to)
				if m := glob(t, sd, "meta.migrating-*"); len(m) != 0 {
					t.Fatalf("partial copies left: %v", m)
				}
				if step == "renamed" {
					// The unrecorded first copy was kept, out of the way.
					if old := glob(t, sd, "meta.old-"+to+"-*"); len(old) != 1 {
						t.Fatalf("old dirs = %v", old)
					}
				}
			})
		}
	}
}

func TestMigrateOldStateDir(t *testing.T) {
	sd := t.TempDir()
	os.MkdirAll(filepath.Join(sd, "meta", "sandboxes", "s1"), 0o700)
	os.WriteFile(filepath.Join(sd, "meta", "sandboxes", "s1", "config"), []byte("old"), 0o600)
	// A temp file of a crashed Save is not a key.
	os.WriteFile(filepath.Join(sd, "meta", "sandboxes", "s1", ".tmp-config-123"), []byte("ol"), 0o600)
	if n, err := Migrate(sd, "leveldb"); err != nil || n != 1 {
		t.Fatalf("Migrate = %d, %v", n, err)
	}
	st := mustOpen(t, sd, "leveldb")
	keys, _ := walk(st, "")
	if !reflect.DeepEqual(keys, []string{"sandboxes/s1/config"}) {
		t.Fatalf("keys = %v", keys)
	}
}

func TestMigrateRefusals(t *testing.T) {
	sd := t.TempDir()
	if _, err := Migrate(sd, "fs"); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Fatalf("Migrate of a new state dir = %v", err)
	}
	if _, err := Migrate(sd, "bolt"); err == nil || !strings.Contains(err.Error(), "fs, leveldb") {
		t.Fatalf("Migrate to bolt = %v", err)
	}
	if _, err := Migrate(filepath.Join(sd, "missing"), "fs"); err == nil {
		t.Fatal("Migrate of a missing dir succeeded")
	}
	if _, err := os.Stat(filepath.Join(sd, "store")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused Migrate recorded a kind: %v", err)
	}
}
