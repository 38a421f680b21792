// Package metastore keeps katafs metadata: Save, Load and Delete of small
// values under slash-separated keys such as "sandboxes/s1/config".
//
// The filesystem backend (NewFS) mirrors every key as a file below its root,
// written atomically: a temp file in the same directory, fsync, rename, fsync
// of the directory. A crash at any point leaves either the old or the new
// value, never half a file.
//
// Errors: Load of a missing key wraps ErrNotFound; a malformed key wraps
// ErrInvalidKey. Everything else is an I/O failure.
//
// Locking: the backend holds no locks of its own; concurrent writers of the
// same key each win whole (rename is atomic). Callers serialise per sandbox.
package metastore
