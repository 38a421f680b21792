package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// portSearchInterval is how often OpenVirtioPort looks for the port while
// the virtio-console driver is still adding it (the port and then its name
// arrive from QEMU after the driver has loaded).
var portSearchInterval = 5 * time.Millisecond

// OpenVirtioPort waits until the virtio-serial port called name shows up
// under sysRoot/class/virtio-ports and opens devRoot/<vportNpM>. Opening it
// is what tells QEMU the guest is listening.
func OpenVirtioPort(ctx context.Context, sysRoot, devRoot, name string) (Port, error) {
	tick := time.NewTicker(portSearchInterval)
	defer tick.Stop()
	var lastErr error
	for {
		f, err := openVirtioPortOnce(sysRoot, devRoot, name)
		if err == nil {
			return &devicePort{dev: vportDevice{f}}, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("agent: virtio port %q: %w (last: %v)", name, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

func openVirtioPortOnce(sysRoot, devRoot, name string) (*os.File, error) {
	dev, err := findVirtioPort(filepath.Join(sysRoot, "class", "virtio-ports"), name)
	if err != nil {
		return nil, err
	}
	// O_RDWR and the Go poller (os.OpenFile sets O_NONBLOCK on a char
	// device that supports poll): deadlines then work on the port, which
	// portConn.Close needs to wake a blocked read or write.
	return os.OpenFile(filepath.Join(devRoot, dev), os.O_RDWR, 0)
}

// findVirtioPort returns the device name (vportNpM) of the port whose
// sysfs name attribute is name.
func findVirtioPort(classDir, name string) (string, error) {
	ents, err := os.ReadDir(classDir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(classDir, e.Name(), "name"))
		if err != nil {
			continue // port being added
		}
		if strings.TrimSpace(string(b)) == name {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("no port named %q among %d in %s: %w", name, len(ents), classDir, os.ErrNotExist)
}

// vportDevice is the fd of a virtio-serial port.
type vportDevice struct {
	*os.File
}

// HostConnected implements portDevice: virtio_console reports POLLHUP
// while no host holds the chardev.
func (d vportDevice) HostConnected() (bool, error) {
	rc, err := d.SyscallConn()
	if err != nil {
		return false, err
	}
	var revents int16
	var perr error
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT}}
		for {
			_, perr = unix.Poll(fds, 0)
			if !errors.Is(perr, unix.EINTR) {
				break
			}
		}
		revents = fds[0].Revents
	})
	if err != nil {
		return false, err
	}
	if perr != nil {
		return false, fmt.Errorf("poll %s: %w", d.Name(), perr)
	}
	if revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
		return false, fmt.Errorf("poll %s: revents %#x", d.Name(), revents)
	}
	return revents&unix.POLLHUP == 0, nil
}
