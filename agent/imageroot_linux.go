package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A container root from a block device (an image the host hot-plugged
// read-only): the exec server, in the container's own mount namespace,
// mounts the device read-only and a writable overlay on top, with its
// upper layer on a tmpfs. The container's writes go to memory; the image
// is never written. The mounts live only in that namespace, so they go
// with the exec server when the container is removed.

// mountImageRoot makes dir a tmpfs holding lower/ (dev, read-only),
// upper/ and work/ (the overlay's), and root/, the overlay it returns.
func mountImageRoot(dir, dev string) (string, error) {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return "", fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	sub := func(name string) string { return filepath.Join(dir, name) }
	for _, d := range []string{"lower", "upper", "work", "root"} {
		if err := os.Mkdir(sub(d), 0o755); err != nil {
			return "", err
		}
	}
	if err := mountReadOnly(dev, sub("lower")); err != nil {
		return "", err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", sub("lower"), sub("upper"), sub("work"))
	if err := unix.Mount("overlay", sub("root"), "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay on %s: %w", sub("root"), err)
	}
	return sub("root"), nil
}

// mountReadOnly mounts dev read-only at target: ext4 first, then every
// other block file system the kernel knows, until one takes it.
func mountReadOnly(dev, target string) error {
	types := []string{"ext4"}
	if more, err := blockFilesystems("/proc/filesystems"); err == nil {
		for _, t := range more {
			if t != "ext4" {
				types = append(types, t)
			}
		}
	}
	var errs []string
	for _, t := range types {
		err := unix.Mount(dev, target, t, unix.MS_RDONLY|unix.MS_NODEV, "")
		if err == nil {
			return nil
		}
		errs = append(errs, t+": "+err.Error())
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EBADMSG) {
			// Not a wrong-type error (EACCES, ENXIO, ...): the device
			// itself is the problem, no type will do better.
			break
		}
	}
	return fmt.Errorf("mount %s read-only: %s", dev, strings.Join(errs, "; "))
}

// blockFilesystems lists the file system types of /proc/filesystems that
// need a device (no "nodev" mark).
func blockFilesystems(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 1 {
			out = append(out, fields[0])
		}
	}
	return out, sc.Err()
}
