package hotplug

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/sirupsen/logrus"
)

// Image formats AddBlock knows.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// qcow2Magic starts every qcow2 image.
var qcow2Magic = []byte("QFI\xfb")

// maxBlockID keeps the id whole as the virtio-blk serial, which the guest
// sees (/dev/disk/by-id/virtio-ID) and which holds at most 20 bytes.
const maxBlockID = 20

// qemuID is what QEMU accepts as a device id or node name: a letter, then
// letters, digits, '-', '.', '_'.
var qemuID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// Block is a host image file hotplugged as a virtio-blk disk.
type Block struct {
	ID       string // device id and virtio serial (also the QMP node name prefix)
	Path     string // host file: raw or qcow2 image, absolute
	ReadOnly bool
	Port     string // filled by AddBlock
	Format   string // filled by AddBlock
}

// NodeName is the QMP block node behind the device.
func (b *Block) NodeName() string { return "drv-" + b.ID }

// AddBlock validates b, probes its format, takes a port and plugs the disk:
//
//	blockdev-add {driver: raw|qcow2, node-name: drv-ID, read-only, file: {driver: file, filename: Path}}
//	device_add {driver: virtio-blk-pci, id: ID, drive: drv-ID, bus: PORT, serial: ID}
//
// On failure nothing is left behind: no node, no device, the port is free.
func AddBlock(ctx context.Context, m Monitor, ports *Ports, b *Block) error {
	if err := checkBlock(b); err != nil {
		return err
	}
	format, err := ProbeFormat(b.Path)
	if err != nil {
		return err
	}
	b.Format = format
	log := logrus.WithFields(logrus.Fields{"device": b.ID, "path": b.Path})
	if err := runSteps(ctx, log, blockAddSteps(m, ports, b)); err != nil {
		b.Port = ""
		return fmt.Errorf("hotplug block %s: %w", b.ID, err)
	}
	log.WithFields(logrus.Fields{"port": b.Port, "format": b.Format}).Info("hotplug: block device added")
	return nil
}

func blockAddSteps(m Monitor, ports *Ports, b *Block) []step {
	return []step{
		{name: "port",
			do: func(context.Context) (err error) {
				b.Port, err = ports.Take()
				return err
			},
			undo: func(context.Context) error { ports.Free(b.Port); return nil }},
		{name: "blockdev-add",
			do: func(ctx context.Context) error {
				return dupIsExists(m.Execute(ctx, "blockdev-add", map[string]any{
					"driver":    b.Format,
					"node-name": b.NodeName(),
					"read-only": b.ReadOnly,
					"file":      map[string]any{"driver": "file", "filename": b.Path},
				}, nil))
			},
			undo: func(ctx context.Context) error {
				return m.Execute(ctx, "blockdev-del", map[string]any{"node-name": b.NodeName()}, nil)
			}},
		{name: "device_add",
			do: func(ctx context.Context) error {
				return dupIsExists(m.Execute(ctx, "device_add", map[string]any{
					"driver": "virtio-blk-pci",
					"id":     b.ID,
					"drive":  b.NodeName(),
					"bus":    b.Port,
					"serial": b.ID,
				}, nil))
			}},
	}
}

// RemoveBlock unplugs b: device_del, the wait for DEVICE_DELETED, then
// blockdev-del, and frees its port. A device or node QEMU no longer has is
// skipped (a remove that was interrupted can be repeated); when neither
// exists the port is freed and the error wraps ErrNotFound.
func RemoveBlock(ctx context.Context, m Monitor, ports *Ports, b *Block) error {
	ctx, cancel := removeCtx(ctx)
	defer cancel()
	devExisted, err := unplug(ctx, m, b.ID)
	if err != nil {
		return fmt.Errorf("hotplug remove block %s: %w", b.ID, err)
	}
	err = m.Execute(context.WithoutCancel(ctx), "blockdev-del", map[string]any{"node-name": b.NodeName()}, nil)
	nodeExisted := !qmpNotFound(err)
	if err != nil && nodeExisted {
		return fmt.Errorf("hotplug remove block %s: blockdev-del: %w", b.ID, err)
	}
	ports.Free(b.Port)
	if !devExisted && !nodeExisted {
		return fmt.Errorf("hotplug remove block %s: %w: QEMU has no such device", b.ID, ErrNotFound)
	}
	logrus.WithFields(logrus.Fields{"device": b.ID, "port": b.Port}).Info("hotplug: block device removed")
	return nil
}

// checkBlock validates the id and the image file before QEMU sees them.
func checkBlock(b *Block) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: hotplug block %q: %s", ErrInvalid, b.ID, fmt.Sprintf(format, a...))
	}
	switch {
	case !qemuID.MatchString(b.ID):
		return bad("id must start with a letter and hold only letters, digits, '-', '.', '_'")
	case len(b.ID) > maxBlockID:
		return bad("id is longer than %d characters (the virtio serial limit)", maxBlockID)
	case b.Path == "":
		return bad("no image path")
	case !filepath.IsAbs(b.Path):
		return bad("image path %q is not absolute", b.Path)
	}
	fi, err := os.Stat(b.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return bad("image %s does not exist", b.Path)
	case err != nil:
		return bad("image %s: %v", b.Path, err)
	case fi.IsDir():
		return bad("%s is a directory, not an image file", b.Path)
	case !fi.Mode().IsRegular():
		return bad("%s is not a regular file (only raw or qcow2 image files can be attached)", b.Path)
	}
	flag := os.O_RDWR
	if b.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(b.Path, flag, 0)
	if err != nil {
		if !b.ReadOnly {
			return bad("image %s cannot be opened for writing (attach it ro?): %v", b.Path, err)
		}
		return bad("image %s cannot be read: %v", b.Path, err)
	}
	f.Close()
	return nil
}

// ProbeFormat tells a qcow2 image (by its magic) from anything else, which
// is attached raw. Probing ourselves, rather than letting QEMU guess, keeps
// a guest from turning a raw disk into a qcow2 one by writing a header.
func ProbeFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: image %s: %v", ErrInvalid, path, err)
	}
	defer f.Close()
	head := make([]byte, len(qcow2Magic))
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%w: image %s: %v", ErrInvalid, path, err)
	}
	if bytes.Equal(head[:n], qcow2Magic) {
		return FormatQcow2, nil
	}
	return FormatRaw, nil
}

// dupIsExists marks QEMU's "duplicate id/node" replies as ErrExists.
func dupIsExists(err error) error {
	if qmpDuplicate(err) {
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}
