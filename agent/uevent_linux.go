package agent

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Waiting for hot-plugged devices. The kernel announces each new device
// with a uevent (NETLINK_KOBJECT_UEVENT); whatever arrives, the waiter
// scans again (sysfs, the link list), so it needs no uevent parsing and
// misses nothing that happened before it subscribed: it subscribes first,
// then scans. A slow poll backs the events up, should the socket be
// unavailable or overflow.

// EventSource subscribes to "something may have changed" wake-ups: the
// channel gets a value (coalesced) after each event; stop ends the
// subscription.
type EventSource func() (events <-chan struct{}, stop func(), err error)

// UeventSource is the kernel's uevent multicast group.
func UeventSource() (<-chan struct{}, func(), error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	// Non-blocking: the runtime poller serves Read, and Close ends it.
	f := os.NewFile(uintptr(fd), "uevent")
	ch := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 16<<10)
		for {
			_, err := f.Read(buf)
			if err != nil && !errors.Is(err, unix.ENOBUFS) {
				return // closed
			}
			// ENOBUFS: events were lost; a rescan covers them.
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, func() { f.Close() }, nil
}

// waitUntil calls check until it reports done, again after each event and
// each poll interval, until ctx ends (ctx.Err()). events may be nil.
func waitUntil(ctx context.Context, events <-chan struct{}, poll time.Duration, check func() (bool, error)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-events:
		case <-t.C:
		}
	}
}
