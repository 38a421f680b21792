package hotplug

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
)

const (
	defaultMTU = 1500
	minMTU     = 68
	maxMTU     = 65535
	// maxIfName is IFNAMSIZ less its NUL.
	maxIfName = 15
	tapPrefix = "kt-"
)

// NIC is a virtio-net device backed by a host tap.
type NIC struct {
	Name  string // guest name, e.g. eth1
	MAC   string // "" = generated, locally administered (02:...), from Sandbox+NetNS+Name; filled
	MTU   int    // 0 = 1500; filled
	Tap   string // host tap name (<=15 chars), filled by AddNIC: "kt-" + short hash
	NetNS string // path of the host network namespace the tap lives in ("" = the daemon's own)
	Port  string // filled by AddNIC
	// Sandbox is optional: the sandbox id, mixed into the generated MAC and
	// tap name so that NICs of the same name in different sandboxes sharing
	// one namespace get different ones.
	Sandbox string
}

// DeviceID is the QEMU id of the virtio-net device.
func (n *NIC) DeviceID() string { return "nic-" + n.Name }

// NetdevID is the QEMU id of the tap backend.
func (n *NIC) NetdevID() string { return "net-" + n.Name }

// FdName is the name the tap's fd goes by in QEMU between getfd and netdev_add.
func (n *NIC) FdName() string { return "fd-" + n.Name }

// AddNIC creates the tap in n.NetNS (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR,
// persistent, MTU set, up), hands its fd to QEMU and plugs the device:
//
//	getfd {fdname: fd-NAME} + the tap fd
//	netdev_add {type: tap, id: net-NAME, fd: fd-NAME, vhost: false}
//	device_add {driver: virtio-net-pci, id: nic-NAME, netdev: net-NAME, mac: MAC, bus: PORT, romfile: ""[, host_mtu: MTU]}
//
// On failure every step is undone: no tap, no fd, no netdev, the port free.
func AddNIC(ctx context.Context, m Monitor, ports *Ports, n *NIC) error {
	if err := prepareNIC(n); err != nil {
		return err
	}
	log := logrus.WithFields(logrus.Fields{"nic": n.Name, "tap": n.Tap, "netns": n.NetNS})
	var tapFile *os.File
	defer func() {
		if tapFile != nil {
			tapFile.Close() // QEMU holds its own copy from getfd
		}
	}()
	if err := runSteps(ctx, log, nicAddSteps(m, ports, n, &tapFile)); err != nil {
		n.Port = ""
		return fmt.Errorf("hotplug nic %s: %w", n.Name, err)
	}
	log.WithFields(logrus.Fields{"port": n.Port, "mac": n.MAC}).Info("hotplug: nic added")
	return nil
}

func nicAddSteps(m Monitor, ports *Ports, n *NIC, tapFile **os.File) []step {
	return []step{
		{name: "port",
			do: func(context.Context) (err error) {
				n.Port, err = ports.Take()
				return err
			},
			undo: func(context.Context) error { ports.Free(n.Port); return nil }},
		{name: "tap",
			do: func(context.Context) (err error) {
				*tapFile, err = tapCreate(n.NetNS, n.Tap, n.MTU)
				return err
			},
			undo: func(context.Context) error {
				if *tapFile != nil {
					(*tapFile).Close()
					*tapFile = nil
				}
				return tapDelete(n.NetNS, n.Tap)
			}},
		{name: "getfd",
			do: func(ctx context.Context) error {
				return m.ExecuteWithFile(ctx, "getfd", map[string]any{"fdname": n.FdName()}, nil, *tapFile)
			},
			// netdev_add consumes the named fd, even when it fails after
			// looking it up: closefd then finds nothing, which is fine.
			undo: func(ctx context.Context) error {
				m.Execute(ctx, "closefd", map[string]any{"fdname": n.FdName()}, nil)
				return nil
			}},
		{name: "netdev_add",
			do: func(ctx context.Context) error {
				return dupIsExists(m.Execute(ctx, "netdev_add", map[string]any{
					"type":  "tap",
					"id":    n.NetdevID(),
					"fd":    n.FdName(),
					"vhost": false,
				}, nil))
			},
			undo: func(ctx context.Context) error {
				return m.Execute(ctx, "netdev_del", map[string]any{"id": n.NetdevID()}, nil)
			}},
		{name: "device_add",
			do: func(ctx context.Context) error {
				return dupIsExists(m.Execute(ctx, "device_add", nicDeviceArgs(n), nil))
			}},
	}
}

// nicDeviceArgs: romfile "" because a hotplugged NIC never boots from the
// network and QEMU would otherwise fail without its efi-virtio.rom;
// host_mtu tells a virtio-net guest driver the MTU (VIRTIO_NET_F_MTU).
func nicDeviceArgs(n *NIC) map[string]any {
	a := map[string]any{
		"driver":  "virtio-net-pci",
		"id":      n.DeviceID(),
		"netdev":  n.NetdevID(),
		"mac":     n.MAC,
		"bus":     n.Port,
		"romfile": "",
	}
	if n.MTU != defaultMTU {
		a["host_mtu"] = n.MTU
	}
	return a
}

// RemoveNIC unplugs n: device_del, the wait for DEVICE_DELETED, netdev_del,
// deletes the tap in its namespace and frees the port. Parts that are
// already gone are skipped; when none was there the error wraps ErrNotFound.
func RemoveNIC(ctx context.Context, m Monitor, ports *Ports, n *NIC) error {
	ctx, cancel := removeCtx(ctx)
	defer cancel()
	devExisted, err := unplug(ctx, m, n.DeviceID())
	if err != nil {
		return fmt.Errorf("hotplug remove nic %s: %w", n.Name, err)
	}
	err = m.Execute(context.WithoutCancel(ctx), "netdev_del", map[string]any{"id": n.NetdevID()}, nil)
	netdevExisted := !qmpNotFound(err)
	if err != nil && netdevExisted {
		return fmt.Errorf("hotplug remove nic %s: netdev_del: %w", n.Name, err)
	}
	if n.Tap != "" {
		if err := tapDelete(n.NetNS, n.Tap); err != nil {
			return fmt.Errorf("hotplug remove nic %s: %w", n.Name, err)
		}
	}
	ports.Free(n.Port)
	if !devExisted && !netdevExisted {
		return fmt.Errorf("hotplug remove nic %s: %w: QEMU has no such device", n.Name, ErrNotFound)
	}
	logrus.WithFields(logrus.Fields{"nic": n.Name, "tap": n.Tap, "port": n.Port}).Info("hotplug: nic removed")
	return nil
}

// DeleteTap deletes a tap AddNIC made, in namespace netns ("" = the
// daemon's own), e.g. one a daemon restart left behind. A tap that is not
// there is no error; a link of that name that is not a tap is ErrInvalid.
func DeleteTap(netns, tap string) error { return tapDelete(netns, tap) }

// prepareNIC validates n and fills in MTU, MAC and Tap.
func prepareNIC(n *NIC) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: hotplug nic %q: %s", ErrInvalid, n.Name, fmt.Sprintf(format, a...))
	}
	if !qemuID.MatchString(n.Name) || len(n.Name) > maxIfName {
		return bad("name must be 1 to %d characters: a letter, then letters, digits, '-', '.', '_'", maxIfName)
	}
	if n.MTU == 0 {
		n.MTU = defaultMTU
	}
	if n.MTU < minMTU || n.MTU > maxMTU {
		return bad("mtu %d out of range %d..%d", n.MTU, minMTU, maxMTU)
	}
	if n.MAC == "" {
		n.MAC = GenerateMAC(n.Sandbox, n.NetNS, n.Name)
	} else {
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || len(hw) != 6 {
			return bad("bad mac %q", n.MAC)
		}
		if hw[0]&1 != 0 {
			return bad("mac %s is a multicast address", n.MAC)
		}
		if isZero(hw) {
			return bad("mac %s is all zeroes", n.MAC)
		}
		n.MAC = hw.String()
	}
	if n.NetNS != "" {
		if _, err := os.Stat(n.NetNS); err != nil {
			return bad("network namespace %s: %v", n.NetNS, err)
		}
	}
	n.Tap = TapName(n.Sandbox, n.NetNS, n.Name)
	return nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// GenerateMAC derives a stable, locally administered unicast MAC
// (02:xx:xx:xx:xx:xx) from parts, so a NIC keeps its MAC across restarts.
func GenerateMAC(parts ...string) string {
	h := sum("mac", parts)
	hw := net.HardwareAddr{0x02, h[0], h[1], h[2], h[3], h[4]}
	return hw.String()
}

// TapName derives the host tap name ("kt-" + 12 hex digits, 15 characters,
// IFNAMSIZ's limit) from parts.
func TapName(parts ...string) string {
	h := sum("tap", parts)
	return tapPrefix + hex.EncodeToString(h[:6])
}

func sum(kind string, parts []string) [sha256.Size]byte {
	return sha256.Sum256([]byte(kind + "\x00" + strings.Join(parts, "\x00")))
}
