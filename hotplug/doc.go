// Package hotplug attaches block devices and NICs to a running sandbox VM:
// the QMP device plumbing (blockdev-add + device_add of virtio-blk-pci,
// getfd + netdev_add + device_add of virtio-net-pci, each on one of the
// pcie-root-ports qmp reserves at launch) plus the host side of a NIC, a tap
// created with netlink inside the sandbox's network namespace.
//
// It does not import qmp: it consumes the small Monitor interface declared
// in monitor.go, which sandbox implements with an adapter over *qmp.Monitor.
//
// Every add is a list of named steps (steps.go), each with its undo. When a
// step fails, or the caller's context ends between two steps, the steps
// already done are undone in reverse order, so a failed add leaves no
// blockdev, netdev, tap or taken port behind. Each QMP command itself runs to
// completion even when ctx ends while it is in flight (a command QEMU has
// received may still take effect, and its undo would then be wrong), and
// undos run on a context of their own, so an interrupted add still cleans up.
//
// A remove asks the guest to release the device (device_del) and then waits
// for QEMU's DEVICE_DELETED event for that device, bounded by ctx (or by
// DefaultRemoveTimeout when ctx has no deadline), never by a fixed sleep. A
// remove cannot be undone: if ctx ends while waiting, the device stays (and
// may still go later); calling remove again finishes the job, because a
// device QEMU no longer has counts as removed.
//
// Lock order: Ports.mu is a leaf, never held while calling out.
//
// Errors: failures wrap one of ErrNoSpace, ErrInvalid, ErrNotFound or
// ErrExists where one applies (checked with errors.Is); a context error is
// wrapped too, so errors.Is(err, context.Canceled) works. Anything else (a
// QMP error reply, a netlink failure) is returned wrapped with the step that
// failed and is unexpected (EIO above).
package hotplug
