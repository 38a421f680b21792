package metastore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// migrateStep is called after each step of Migrate; tests make it fail to
// leave the state directory as a crash at that point would.
var migrateStep = func(step string) error { return nil }

// Migrate copies every key of stateDir's store to the backend to, checks
// each one by loading it back from the reopened copy, records to as the
// kind, and only then moves the old data aside to meta.old-<kind>-<unix
// time> (it is never deleted). It returns the number of keys copied.
//
// The copy goes to a fresh meta.migrating-* directory that becomes the
// target's data directory by rename before the kind is recorded, so a crash
// at any point leaves either the old store in use (a rerun starts over,
// discarding partial copies) or the new one (a rerun is refused as for any
// store already of kind to; the old data directory may then still sit in
// place, unused, until a later migration moves it aside).
//
// The state directory is locked: Migrate fails while katafs runs on it.
func Migrate(stateDir, to string) (n int, err error) {
	if err := checkKind(to); err != nil {
		return 0, err
	}
	if _, err := os.Stat(stateDir); err != nil {
		return 0, fmt.Errorf("metastore: %w", err)
	}
	unlock, err := lockState(stateDir)
	if err != nil {
		return 0, err
	}
	defer unlock()
	from, err := recordedKind(stateDir)
	if err != nil {
		return 0, err
	}
	switch from {
	case "":
		return 0, fmt.Errorf("metastore: state directory %s has no store to migrate", stateDir)
	case to:
		return 0, &kindError{fmt.Sprintf("state directory %s already uses --store %s", stateDir, to)}
	}

	// Partial copies of interrupted runs: never the live data, safe to drop.
	stale, _ := filepath.Glob(filepath.Join(stateDir, "meta.migrating-*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			return 0, fmt.Errorf("metastore: %w", err)
		}
	}
	// A target data directory that is not recorded is unused: a rerun after
	// a crash between its rename and the record, or a leftover of older
	// migrations. Keep it, but out of the way.
	if err := moveAside(stateDir, to); err != nil {
		return 0, err
	}

	tmp := filepath.Join(stateDir, "meta.migrating-"+to+"-"+strconv.FormatInt(time.Now().UnixNano(), 10))
	keys, err := copyStore(stateDir, from, to, tmp)
	if err != nil {
		return 0, err
	}
	if err := migrateStep("copied"); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, dataDir(stateDir, to)); err != nil {
		return 0, fmt.Errorf("metastore: %w", err)
	}
	if err := syncDir(stateDir); err != nil {
		return 0, err
	}
	if err := migrateStep("renamed"); err != nil {
		return 0, err
	}
	if err := writeKind(stateDir, to); err != nil {
		return 0, err
	}
	if err := migrateStep("recorded"); err != nil {
		return 0, err
	}
	if err := moveAside(stateDir, from); err != nil {
		return 0, err
	}
	return len(keys), nil
}

// copyStore copies the store of kind from into a new store of kind to in
// dir, verifies the copy from a fresh open of it, and fsyncs it.
func copyStore(stateDir, from, to, dir string) (keys []string, err error) {
	src, closeSrc, err := openKind(stateDir, from, dataDir(stateDir, from))
	if err != nil {
		return nil, err
	}
	defer closeSrc()
	keys, err = walk(src, "")
	if err != nil {
		return nil, err
	}
	dst, closeDst, err := openKind(stateDir, to, dir)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		v, err := src.Load(k)
		if err == nil {
			err = dst.Save(k, v)
		}
		if err != nil {
			closeDst()
			return nil, err
		}
	}
	if err := closeDst(); err != nil {
		return nil, err
	}
	if dst, closeDst, err = openKind(stateDir, to, dir); err != nil {
		return nil, err
	}
	defer closeDst()
	for _, k := range keys {
		want, err := src.Load(k)
		if err != nil {
			return nil, err
		}
		got, err := dst.Load(k)
		if err != nil {
			return nil, fmt.Errorf("metastore: migrate: verify %s: %w", k, err)
		}
		if string(got) != string(want) {
			return nil, fmt.Errorf("metastore: migrate: verify %s: value differs after copy", k)
		}
	}
	if err := syncTree(dir); err != nil {
		return nil, err
	}
	return keys, nil
}

// walk returns every key at or below prefix, in List order. A name is a key
// when it loads; otherwise it is a parent, and walk goes below it.
func walk(s Store, prefix string) ([]string, error) {
	names, err := s.List(prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, name := range names {
		k := name
		if prefix != "" {
			k = prefix + "/" + name
		}
		_, err := s.Load(k)
		if err == nil {
			keys = append(keys, k)
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		below, err := walk(s, k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, below...)
	}
	return keys, nil
}

// moveAside renames kind's data directory, if any, to meta.old-<kind>-<unix
// time>, with a -N suffix if that name is taken.
func moveAside(stateDir, kind string) error {
	dir := dataDir(stateDir, kind)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	base := filepath.Join(stateDir, "meta.old-"+kind+"-"+strconv.FormatInt(time.Now().Unix(), 10))
	dst := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(dir, dst); err != nil {
		return fmt.Errorf("metastore: move old store aside: %w", err)
	}
	return syncDir(stateDir)
}

// syncTree fsyncs every file and directory below dir, so the copy is on
// disk before it is renamed into place and recorded.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("metastore: %w", err)
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("metastore: %w", err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return fmt.Errorf("metastore: sync %s: %w", p, err)
		}
		return nil
	})
}
