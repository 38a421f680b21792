package metastore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The backends Open knows, by the name of their --store flag value.
const (
	KindFS      = "fs"
	KindLevelDB = "leveldb"
)

// Kinds lists the backend kinds, the default first.
var Kinds = []string{KindFS, KindLevelDB}

// Files in a state directory.
const (
	kindFile = "store"      // one word: the kind the data is kept in
	lockFile = "store.lock" // flock'd while a store is open or migrating
)

// ErrWrongKind is wrapped by Open when the state directory was made with
// another backend, and by Migrate when it already uses the target one.
var ErrWrongKind = errors.New("metastore: state directory uses another store")

// kindError is a message for the user that wraps ErrWrongKind without
// repeating its text.
type kindError struct{ msg string }

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return ErrWrongKind }

// dataDir is where a kind keeps its data inside a state directory.
func dataDir(stateDir, kind string) string {
	if kind == KindLevelDB {
		return filepath.Join(stateDir, "meta.leveldb")
	}
	return filepath.Join(stateDir, "meta")
}

func checkKind(kind string) error {
	for _, k := range Kinds {
		if k == kind {
			return nil
		}
	}
	return fmt.Errorf("metastore: unknown store kind %q (kinds: %s)", kind, strings.Join(Kinds, ", "))
}

// Open opens the metadata store of stateDir with the backend kind ("" means
// fs). The first Open records kind in stateDir/store; later ones with the
// other kind are refused, since they would start from an empty store. A
// state directory from before the record, with only a meta/ directory,
// counts as fs. The store is locked against other Opens and Migrate until
// the returned close func is called.
func Open(stateDir, kind string) (Store, func() error, error) {
	if kind == "" {
		kind = KindFS
	}
	if err := checkKind(kind); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("metastore: %w", err)
	}
	unlock, err := lockState(stateDir)
	if err != nil {
		return nil, nil, err
	}
	st, closeStore, err := openLocked(stateDir, kind)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return st, func() error {
		err := closeStore()
		unlock()
		return err
	}, nil
}

func openLocked(stateDir, kind string) (Store, func() error, error) {
	recorded, err := recordedKind(stateDir)
	if err != nil {
		return nil, nil, err
	}
	if recorded == "" {
		recorded = kind
	}
	if _, err := os.Stat(filepath.Join(stateDir, kindFile)); errors.Is(err, fs.ErrNotExist) {
		// Record first: a crash before the data directory exists then
		// still reopens as this kind, with an empty store. A state
		// directory from before the record gets one too.
		if err := writeKind(stateDir, recorded); err != nil {
			return nil, nil, err
		}
	}
	if recorded != kind {
		return nil, nil, &kindError{fmt.Sprintf("state directory %s was made with --store %s; start with --store %s, or convert it: katafs store migrate --state-dir %s --to %s",
			stateDir, recorded, recorded, stateDir, kind)}
	}
	return openKind(stateDir, kind, dataDir(stateDir, kind))
}

func openKind(stateDir, kind, dir string) (Store, func() error, error) {
	if kind == KindLevelDB {
		db, err := NewLevelDB(dir)
		if err != nil {
			return nil, nil, err
		}
		return db, db.Close, nil
	}
	s, err := NewFS(dir)
	if err != nil {
		return nil, nil, err
	}
	// NewFS may have just made dir: make that durable too.
	if err := syncDir(stateDir); err != nil {
		return nil, nil, err
	}
	return s, func() error { return nil }, nil
}

// recordedKind is the kind stateDir/store names, "fs" for a state directory
// from before the record (a meta/ directory and no store file), or "" for a
// new state directory.
func recordedKind(stateDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, kindFile))
	if errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Stat(dataDir(stateDir, KindFS)); err == nil && fi.IsDir() {
			return KindFS, nil
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("metastore: %w", err)
	}
	kind := strings.TrimSpace(string(b))
	if err := checkKind(kind); err != nil {
		return "", fmt.Errorf("metastore: %s: %w", filepath.Join(stateDir, kindFile), err)
	}
	return kind, nil
}

// writeKind records kind atomically: temp file, fsync, rename, fsync dir.
func writeKind(stateDir, kind string) error {
	f, err := os.CreateTemp(stateDir, ".tmp-"+kindFile+"-")
	if err != nil {
		return fmt.Errorf("metastore: record store kind: %w", err)
	}
	tmp := f.Name()
	_, err = f.WriteString(kind + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(stateDir, kindFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("metastore: record store kind: %w", err)
	}
	return syncDir(stateDir)
}

// lockState takes an exclusive flock on stateDir/store.lock, so two daemons,
// or a daemon and a migration, never use one state directory at once. The
// kernel drops the lock when the process dies.
func lockState(stateDir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("metastore: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("metastore: state directory %s is in use by another katafs", stateDir)
		}
		return nil, fmt.Errorf("metastore: lock %s: %w", stateDir, err)
	}
	return func() { f.Close() }, nil
}
