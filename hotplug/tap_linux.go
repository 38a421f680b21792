package hotplug

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The tap operations are variables so that tests of the QMP sequences run
// without root and netlink.
var (
	tapCreate = createTap
	tapDelete = deleteTap
)

// inNetNS runs fn on an OS thread switched into the namespace at path ("" =
// the current one). The thread is never switched back: it stays locked and
// Go discards it when the goroutine ends, so no other goroutine can ever run
// in the wrong namespace, whatever fails.
func inNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("%w: network namespace %s: %v", ErrInvalid, path, err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(target); err != nil {
			done <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// createTap makes a persistent tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) named
// name inside netnsPath, sets its MTU, brings it up and returns an fd
// attached to it. Both the create and the open happen inside the namespace:
// a tun fd belongs to the namespace /dev/net/tun was opened in.
// IFF_TUN_EXCL makes an existing device an error instead of attaching to it.
func createTap(netnsPath, name string, mtu int) (*os.File, error) {
	var file *os.File
	err := inNetNS(netnsPath, func() error {
		if _, err := netlink.LinkByName(name); err == nil {
			return fmt.Errorf("%w: link %s already exists", ErrExists, name)
		}
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: name},
			Mode:      netlink.TUNTAP_MODE_TAP,
			Flags:     netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_TUN_EXCL,
			Queues:    1, // keeps the fd open for us (Fds[0])
		}
		if err := netlink.LinkAdd(tap); err != nil {
			return fmt.Errorf("creating tap %s: %w", name, err)
		}
		if len(tap.Fds) != 1 {
			for _, f := range tap.Fds {
				f.Close()
			}
			netlink.LinkDel(tap)
			return fmt.Errorf("creating tap %s: %d fds", name, len(tap.Fds))
		}
		fail := func(what string, err error) error {
			tap.Fds[0].Close()
			netlink.LinkDel(tap)
			return fmt.Errorf("tap %s: %s: %w", name, what, err)
		}
		if err := netlink.LinkSetMTU(tap, mtu); err != nil {
			return fail("setting mtu", err)
		}
		if err := netlink.LinkSetUp(tap); err != nil {
			return fail("setting up", err)
		}
		file = tap.Fds[0]
		return nil
	})
	return file, err
}

// deleteTap deletes tap name in netnsPath; a missing one is fine.
func deleteTap(netnsPath, name string) error {
	h, err := handleAt(netnsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	if link.Type() != "tuntap" {
		return fmt.Errorf("%w: %s is a %s link, not a tap", ErrInvalid, name, link.Type())
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("deleting tap %s: %w", name, err)
	}
	return nil
}

// handleAt is a netlink handle whose sockets live in the namespace at path
// ("" = the current one).
func handleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: network namespace %s: %v", ErrInvalid, path, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}
