package metastore

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound is wrapped by Load when a key has no value.
	ErrNotFound = errors.New("metastore: no such key")
	// ErrInvalidKey is wrapped when a key is empty or has empty, "." or ".." parts.
	ErrInvalidKey = errors.New("metastore: invalid key")
	// ErrConflict is wrapped by Save when the key is below another key's
	// value or has keys below it: a key is a value or a parent, never both.
	ErrConflict = errors.New("metastore: key conflicts with an existing key")
)

// Store is the storage API of the seed (storage.Save / Load / Delete).
type Store interface {
	Save(key string, value []byte) error
	Load(key string) ([]byte, error)
	// Delete removes key and everything below it; a missing key is no error.
	Delete(key string) error
	// List returns the names directly below prefix ("" for the top), sorted.
	List(prefix string) ([]string, error)
}

func checkKey(key string, allowEmpty bool) error {
	if key == "" {
		if allowEmpty {
			return nil
		}
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".tmp-") {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	return nil
}
