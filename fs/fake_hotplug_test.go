package fs

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/katafs/katafs/sandbox"
)

// fakePorts is how many PCIe root ports a fake sandbox has for disks.
const fakePorts = 2

// fakeHotplug is a fake sandbox's devices, NICs and routes. It starts
// with eth0, a NIC katafs did not add (no tap). The zero value is ready.
type fakeHotplug struct {
	hmu     sync.Mutex
	devs    []sandbox.Device
	nics    []sandbox.NIC
	routes  []sandbox.Route
	started bool
	nextDev int
	nextMAC int
}

// initLocked adds eth0 on first use; hmu is held.
func (h *fakeHotplug) initLocked() {
	if h.started {
		return
	}
	h.started = true
	h.nics = []sandbox.NIC{{Name: "eth0", MAC: "02:00:00:00:00:00", MTU: 1500, Addrs: []string{"10.0.2.15/24"}}}
}

func (h *fakeHotplug) Devices(ctx context.Context) ([]sandbox.Device, error) {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	return slices.Clone(h.devs), nil
}

func (h *fakeHotplug) AddDevice(ctx context.Context, cfg sandbox.DeviceConfig) error {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	if cfg.Kind != "block" {
		return fmt.Errorf("%w: kind %q", sandbox.ErrInvalid, cfg.Kind)
	}
	if cfg.ID == "" {
		for {
			cfg.ID = fmt.Sprintf("disk%d", h.nextDev)
			h.nextDev++
			if h.dev(cfg.ID) < 0 {
				break
			}
		}
	} else if h.dev(cfg.ID) >= 0 {
		return fmt.Errorf("%w: device %s", sandbox.ErrExists, cfg.ID)
	}
	// The first free port and guest name.
	port, guest := "", ""
	for i := range fakePorts {
		p := fmt.Sprintf("rp%d", i)
		if !slices.ContainsFunc(h.devs, func(d sandbox.Device) bool { return d.Port == p }) {
			port = p
			break
		}
	}
	if port == "" {
		return fmt.Errorf("%w: all %d root ports are taken", sandbox.ErrNoSpace, fakePorts)
	}
	for c := 'b'; c <= 'z'; c++ {
		g := "/dev/vd" + string(c)
		if !slices.ContainsFunc(h.devs, func(d sandbox.Device) bool { return d.Guest == g }) {
			guest = g
			break
		}
	}
	h.devs = append(h.devs, sandbox.Device{ID: cfg.ID, Kind: cfg.Kind, Path: cfg.Path, ReadOnly: cfg.ReadOnly,
		Format: "raw", Guest: guest, Port: port})
	return nil
}

func (h *fakeHotplug) dev(id string) int {
	return slices.IndexFunc(h.devs, func(d sandbox.Device) bool { return d.ID == id })
}

func (h *fakeHotplug) RemoveDevice(ctx context.Context, id string) error {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	i := h.dev(id)
	if i < 0 {
		return fmt.Errorf("%w: device %s", sandbox.ErrNotFound, id)
	}
	h.devs = slices.Delete(h.devs, i, i+1)
	return nil
}

func (h *fakeHotplug) Interfaces(ctx context.Context) ([]sandbox.NIC, error) {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	h.initLocked()
	return slices.Clone(h.nics), nil
}

func (h *fakeHotplug) nic(name string) int {
	h.initLocked()
	return slices.IndexFunc(h.nics, func(n sandbox.NIC) bool { return n.Name == name })
}

func (h *fakeHotplug) AddInterface(ctx context.Context, cfg sandbox.NICConfig) error {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	if h.nic(cfg.Name) >= 0 {
		return fmt.Errorf("%w: interface %s", sandbox.ErrExists, cfg.Name)
	}
	h.nextMAC++
	n := sandbox.NIC{Name: cfg.Name, MAC: cfg.MAC, MTU: cfg.MTU, Addrs: cfg.Addrs, Tap: fmt.Sprintf("kt-%04x", h.nextMAC)}
	if n.MAC == "" {
		n.MAC = fmt.Sprintf("02:00:00:00:00:%02x", h.nextMAC)
	}
	if n.MTU == 0 {
		n.MTU = 1500
	}
	h.nics = append(h.nics, n)
	return nil
}

// RemoveInterface also drops the routes through the NIC, as the guest
// kernel does.
func (h *fakeHotplug) RemoveInterface(ctx context.Context, name string) error {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	i := h.nic(name)
	if i < 0 {
		return fmt.Errorf("%w: interface %s", sandbox.ErrNotFound, name)
	}
	h.nics = slices.Delete(h.nics, i, i+1)
	h.routes = slices.DeleteFunc(h.routes, func(r sandbox.Route) bool { return r.Dev == name })
	return nil
}

func (h *fakeHotplug) Routes(ctx context.Context) ([]sandbox.Route, error) {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	return slices.Clone(h.routes), nil
}

func (h *fakeHotplug) route(dest string) int {
	return slices.IndexFunc(h.routes, func(r sandbox.Route) bool { return r.Dest == dest })
}

func (h *fakeHotplug) AddRoute(ctx context.Context, r sandbox.Route) error {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	if h.nic(r.Dev) < 0 {
		return fmt.Errorf("%w: interface %s", sandbox.ErrNotFound, r.Dev)
	}
	if h.route(r.Dest) >= 0 {
		return fmt.Errorf("%w: route %s", sandbox.ErrExists, r.Dest)
	}
	h.routes = append(h.routes, r)
	return nil
}

func (h *fakeHotplug) DelRoute(ctx context.Context, dest string) error {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	i := h.route(dest)
	if i < 0 {
		return fmt.Errorf("%w: route %s", sandbox.ErrNotFound, dest)
	}
	h.routes = slices.Delete(h.routes, i, i+1)
	return nil
}
