package sandbox

import "errors"

// Sentinels for the errors callers must tell apart. Every error returned by
// this package wraps one of them or is an unexpected failure (the fs layer
// maps the latter to EIO).
var (
	ErrInvalid  = errors.New("invalid argument")
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrBusy     = errors.New("wrong state")
	ErrNoSpace  = errors.New("out of resources")
	// ErrVM marks failures of QEMU, the guest or the agent.
	ErrVM = errors.New("vm failure")
)
