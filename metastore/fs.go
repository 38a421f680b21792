package metastore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// FS is the filesystem backend: key "a/b" is the file ROOT/a/b.
type FS struct {
	root string
}

var _ Store = (*FS)(nil)

// NewFS returns a store rooted at dir, creating it.
func NewFS(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("metastore: %w", err)
	}
	return &FS{root: dir}, nil
}

// Root is the directory the store mirrors its keys under.
func (s *FS) Root() string { return s.root }

func (s *FS) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Save writes value under key atomically and durably.
func (s *FS) Save(key string, value []byte) error {
	if err := checkKey(key, false); err != nil {
		return err
	}
	p := s.path(key)
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%w: %s is below a value", ErrConflict, key)
		}
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(value); err != nil {
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("metastore: save %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		// Linux says EISDIR or EEXIST, depending on the filesystem.
		if fi, serr := os.Lstat(p); serr != nil || !fi.IsDir() {
			return fmt.Errorf("metastore: save %s: %w", key, err)
		}
		// An empty directory left by Delete of the keys below is no
		// conflict; one with keys in it is.
		if os.Remove(p) != nil {
			return fmt.Errorf("%w: %s has keys below it", ErrConflict, key)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("metastore: save %s: %w", key, err)
		}
	}
	ok = true
	return syncDir(dir)
}

// Load returns the value of key, or an error wrapping ErrNotFound.
func (s *FS) Load(key string) ([]byte, error) {
	if err := checkKey(key, false); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(key))
	// A directory holds keys, not a value; ENOTDIR: a parent is a value.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("metastore: load %s: %w", key, err)
	}
	return b, nil
}

// Delete removes key and all keys below it.
func (s *FS) Delete(key string) error {
	if err := checkKey(key, false); err != nil {
		return err
	}
	p := s.path(key)
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("metastore: delete %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// List returns the names directly below prefix, leaving out temp files.
func (s *FS) List(prefix string) ([]string, error) {
	if err := checkKey(strings.TrimSuffix(prefix, "/"), true); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.path(prefix))
	// ENOTDIR: prefix (or a parent) is a value, which has nothing below it.
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metastore: list %s: %w", prefix, err)
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metastore: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("metastore: sync %s: %w", dir, err)
	}
	return nil
}
