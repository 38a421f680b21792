// Package metastore keeps katafs metadata: Save, Load and Delete of small
// values under slash-separated keys such as "sandboxes/s1/config". A key is
// either a value or the parent of other keys, never both (ErrConflict).
//
// Backends, both run through one conformance suite:
//
//   - fs (NewFS, the default) mirrors every key as a file below its root,
//     written atomically: a temp file in the same directory, fsync, rename,
//     fsync of the directory. A crash at any point leaves either the old or
//     the new value, never half a file.
//   - leveldb (NewLevelDB) keeps keys in one LevelDB database, every write
//     synced (opt.WriteOptions{Sync: true}) before it is acknowledged. A
//     torn record at the journal tail is an unacknowledged write and is
//     dropped on reopen.
//
// A state directory records its backend in STATE/store (one word), written
// by the first Open; Open refuses the other kind rather than start from an
// empty store, and Migrate converts from one kind to the other. Data lives in
// STATE/meta (fs) or STATE/meta.leveldb; Migrate moves replaced data to
// STATE/meta.old-<kind>-<unix time> and never deletes it.
//
// Errors: Load of a missing key wraps ErrNotFound; a malformed key wraps
// ErrInvalidKey; a key below a value or above other keys wraps ErrConflict;
// Open of a state directory made with the other backend (and Migrate to the
// backend already in use) wraps ErrWrongKind. Everything else is an I/O
// failure.
//
// Locking: Open and Migrate hold an exclusive flock on STATE/store.lock, so
// one process uses a state directory at a time. Within it, the fs backend
// holds no locks: concurrent writers of the same key each win whole (rename
// is atomic). The LevelDB backend serialises Save and Delete on one mutex
// so its value-or-parent check is atomic with the write. Callers serialise
// per sandbox.
package metastore
