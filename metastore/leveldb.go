package metastore

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// LevelDB is the LevelDB backend: key "a/b" is the LevelDB key "a/b".
//
// A key is either a value or the parent of other keys, never both, so that
// the data can always be migrated to the filesystem backend; Save enforces
// this (ErrConflict) under mu, which also makes that check atomic with the
// write.
type LevelDB struct {
	mu sync.Mutex // serialises Save and Delete
	db *leveldb.DB
}

var _ Store = (*LevelDB)(nil)

// syncWrite makes every Save and Delete reach the disk before it returns.
var syncWrite = &opt.WriteOptions{Sync: true}

// NewLevelDB opens (creating it if needed) a LevelDB store in dir. Only one
// process may have it open at a time.
func NewLevelDB(dir string) (*LevelDB, error) {
	// The default strictness drops a torn record at the tail of the journal
	// (a write that was never acknowledged) instead of refusing to open.
	db, err := leveldb.OpenFile(dir, &opt.Options{})
	if err != nil {
		return nil, fmt.Errorf("metastore: open leveldb %s: %w", dir, err)
	}
	return &LevelDB{db: db}, nil
}

// Close releases the database; the store must not be used afterwards.
func (s *LevelDB) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("metastore: close leveldb: %w", err)
	}
	return nil
}

// Save writes value under key with a synced write.
func (s *LevelDB) Save(key string, value []byte) error {
	if err := checkKey(key, false); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkShape(key); err != nil {
		return err
	}
	if err := s.db.Put([]byte(key), value, syncWrite); err != nil {
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	return nil
}

// checkShape refuses a key below an existing value or above existing keys.
func (s *LevelDB) checkShape(key string) error {
	for i := strings.IndexByte(key, '/'); i >= 0; i = nextSlash(key, i) {
		ok, err := s.db.Has([]byte(key[:i]), nil)
		if err != nil {
			return fmt.Errorf("metastore: save %s: %w", key, err)
		}
		if ok {
			return fmt.Errorf("%w: %s is below the value %s", ErrConflict, key, key[:i])
		}
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte(key+"/")), nil)
	defer it.Release()
	if it.First() {
		return fmt.Errorf("%w: %s has keys below it", ErrConflict, key)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	return nil
}

func nextSlash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// Load returns the value of key, or an error wrapping ErrNotFound.
func (s *LevelDB) Load(key string) ([]byte, error) {
	if err := checkKey(key, false); err != nil {
		return nil, err
	}
	v, err := s.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("metastore: load %s: %w", key, err)
	}
	return v, nil
}

// Delete removes key and all keys below it in one synced batch.
func (s *LevelDB) Delete(key string) error {
	if err := checkKey(key, false); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := new(leveldb.Batch)
	b.Delete([]byte(key))
	it := s.db.NewIterator(util.BytesPrefix([]byte(key+"/")), nil)
	for it.Next() {
		b.Delete(append([]byte(nil), it.Key()...))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("metastore: delete %s: %w", key, err)
	}
	if err := s.db.Write(b, syncWrite); err != nil {
		return fmt.Errorf("metastore: delete %s: %w", key, err)
	}
	return nil
}

// List returns the names directly below prefix, sorted. It seeks past each
// child's subtree, so it costs one seek per name, not one step per key.
func (s *LevelDB) List(prefix string) ([]string, error) {
	p := strings.TrimSuffix(prefix, "/")
	if err := checkKey(p, true); err != nil {
		return nil, err
	}
	start := ""
	if p != "" {
		start = p + "/"
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte(start)), nil)
	defer it.Release()
	var names []string
	for ok := it.First(); ok; {
		rest := string(it.Key()[len(start):])
		name, _, below := strings.Cut(rest, "/")
		names = append(names, name)
		if !below {
			ok = it.Next()
			continue
		}
		// '0' sorts right after '/': the first key past name's subtree.
		ok = it.Seek([]byte(start + name + "0"))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("metastore: list %s: %w", prefix, err)
	}
	// Keys sort bytewise with '/' inside them ("a-b" < "a/x"), so the names
	// come out of order; sort as the FS backend does.
	sort.Strings(names)
	return slices.Compact(names), nil
}
