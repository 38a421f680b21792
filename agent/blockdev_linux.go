package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DevicesConfig is where Devices finds the guest's devices.
type DevicesConfig struct {
	// SysDir is sysfs, default /sys; DevDir the device nodes, default /dev.
	SysDir, DevDir string
	// Ready blocks until the drivers of hot-plugged devices are loaded
	// (the modules RunInit loads in the background); nil: loaded.
	Ready func(ctx context.Context) error
	// Events wakes waiters up; default UeventSource. An error from it
	// leaves polling alone.
	Events EventSource
	// Poll is the rescan interval beside the events; default 100ms.
	Poll time.Duration
	// Netlink is the handle for links, addresses and routes; nil uses
	// the agent's own network namespace.
	Netlink *netlink.Handle
}

// Devices is the guest's BlockDevices and Network.
type Devices struct {
	cfg DevicesConfig
	nl  *netlink.Handle
}

var (
	_ BlockDevices = (*Devices)(nil)
	_ Network      = (*Devices)(nil)
)

// NewDevices returns the guest's devices.
func NewDevices(cfg DevicesConfig) *Devices {
	if cfg.SysDir == "" {
		cfg.SysDir = "/sys"
	}
	if cfg.DevDir == "" {
		cfg.DevDir = "/dev"
	}
	if cfg.Events == nil {
		cfg.Events = UeventSource
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	nl := cfg.Netlink
	if nl == nil {
		nl = &netlink.Handle{} // the package's default: this namespace
	}
	return &Devices{cfg: cfg, nl: nl}
}

// virtioBlkSerialMax is VIRTIO_BLK_ID_BYTES: the guest sees at most this
// much of a longer serial.
const virtioBlkSerialMax = 20

// wait runs check as waitUntil does, after the drivers are loaded, with
// the device events. It returns NotFound (what) when ctx ends first.
func (d *Devices) wait(ctx context.Context, what string, check func() (bool, error)) error {
	events, stop, err := d.cfg.Events()
	if err != nil {
		logrus.WithError(err).Warn("agent: device events unavailable, polling")
		events, stop = nil, func() {}
	}
	defer stop()
	if d.cfg.Ready != nil {
		if err := d.cfg.Ready(ctx); err != nil {
			return status.Errorf(codes.NotFound, "%s: drivers not loaded: %v", what, err)
		}
	}
	err = waitUntil(ctx, events, d.cfg.Poll, check)
	if err != nil && ctx.Err() != nil {
		return status.Errorf(codes.NotFound, "%s: not there after waiting (%v)", what, ctx.Err())
	}
	return err
}

// WaitBlockDevice implements BlockDevices.
func (d *Devices) WaitBlockDevice(ctx context.Context, serial string) (string, error) {
	if serial == "" || strings.ContainsAny(serial, "\n/") {
		return "", status.Errorf(codes.InvalidArgument, "bad serial %q", serial)
	}
	var path string
	err := d.wait(ctx, "block device with serial "+serial, func() (bool, error) {
		path = findBlockBySerial(d.cfg.SysDir, d.cfg.DevDir, serial)
		return path != "", nil
	})
	return path, err
}

// findBlockBySerial returns the device node of the block device whose
// sysfs serial is serial, "" if there is none (yet): sysfs and the node
// in devtmpfs both have to be there.
func findBlockBySerial(sysDir, devDir, serial string) string {
	want := serial
	if len(want) > virtioBlkSerialMax {
		want = want[:virtioBlkSerialMax]
	}
	ents, _ := os.ReadDir(filepath.Join(sysDir, "block"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysDir, "block", e.Name(), "serial"))
		if err != nil || strings.TrimSpace(string(b)) != want {
			continue
		}
		node := filepath.Join(devDir, e.Name())
		fi, err := os.Stat(node)
		if err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
			continue
		}
		return node
	}
	return ""
}
