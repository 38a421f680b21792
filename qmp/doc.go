// Package qmp runs QEMU for katafs: it builds the command line (config.go),
// launches the VM as a list of named start-up steps (start.go), watches the
// process through a pidfd (process.go), talks QMP through
// github.com/digitalocean/go-qemu (monitor.go, events.go, commands.go) and
// decides between KVM and TCG with a real boot probe (probe.go).
//
// QEMU runs in its own session and is never tied to a context: a VM outlives
// the call that started it and the daemon that started it. Attach finds it
// again after a daemon restart.
//
// The go-qemu SocketMonitor reads replies and events in one loop and hands
// events over an unbuffered channel, so a Monitor drains that channel from
// its own goroutine for its whole life and fans events out to subscribers
// through buffered channels; a full subscriber loses events (counted by
// Dropped), it never stalls the loop and so never stalls Execute.
//
// Lock order: Monitor.mu (subscriber set) and Process.mu are leaves; no code
// holds one while taking another or while blocking. go-qemu's own mutex
// serialises commands on one monitor.
//
// Errors: failures wrap one of the sentinels in errors.go (ErrInvalid,
// ErrNotFound, ErrBusy, ErrClosed, ErrMismatch) where one applies; a QMP
// error reply is an *Error carrying QEMU's class and description; a context
// error is returned as ctx.Err() (wrapped), so errors.Is(err,
// context.DeadlineExceeded) works. Anything else is unexpected (EIO above).
package qmp
