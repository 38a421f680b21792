// Package sandbox is the sandbox API of katafs: CreateSandbox, FetchSandbox,
// ListSandboxes, and per sandbox Status, Start, Stop, Pause, Resume, Release
// and Delete. It owns no I/O of its own: it drives qmp (the VM), agent (the
// guest) and metastore (the metadata).
//
// State machine (transitions.go): ready -start-> running -pause-> paused
// -resume-> running; ready, running and paused -stop-> stopped; stopped
// -start-> running (the VM boots again). Delete is legal in every state.
// An illegal move is an error wrapping ErrBusy that names both states.
//
// Lock order: Manager.mu, then Sandbox.mu. Manager.mu only guards the map of
// live sandboxes and is never held across a blocking call. Sandbox.mu is
// held across a whole lifecycle operation (that is what serialises them),
// so code holding it never takes Manager.mu.
//
// Errors wrap one of the sentinels in errors.go, or are unexpected (EIO).
package sandbox
