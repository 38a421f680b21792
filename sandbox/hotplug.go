package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/hotplug"
	"github.com/katafs/katafs/qmp"
)

// hwState is what is plugged into a sandbox's VM; it is saved with the
// record so that after a daemon restart the devices and NICs are still
// listed and can still be removed.
type hwState struct {
	Devices []Device    `json:"devices,omitempty"`
	NICs    []nicRecord `json:"nics,omitempty"`
}

type nicRecord struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac"`
	MTU   int      `json:"mtu"`
	Addrs []string `json:"addrs,omitempty"`
	Tap   string   `json:"tap"`
	NetNS string   `json:"netns"`
	Port  string   `json:"port"`
}

// monitorAdapter fits *qmp.Monitor to hotplug.Monitor.
type monitorAdapter struct{ m *qmp.Monitor }

func (a monitorAdapter) Execute(ctx context.Context, cmd string, args, out any) error {
	return a.m.Execute(ctx, cmd, args, out)
}

func (a monitorAdapter) ExecuteWithFile(ctx context.Context, cmd string, args, out any, f *os.File) error {
	return a.m.ExecuteWithFile(ctx, cmd, args, f, out)
}

func (a monitorAdapter) Events() (<-chan hotplug.Event, func()) {
	in, cancel := a.m.Subscribe()
	out := make(chan hotplug.Event, 16)
	go func() {
		defer close(out)
		for e := range in {
			out <- hotplug.Event{Name: e.Name, Data: e.Data}
		}
	}()
	return out, cancel
}

// ports rebuilds the root-port allocator from what is recorded.
func (s *Sandbox) ports() *hotplug.Ports {
	ids := make([]string, s.m.opts.HotplugPorts)
	for i := range ids {
		ids[i] = qmp.RootPortID(i)
	}
	p := hotplug.NewPorts(ids)
	for _, d := range s.rec.HW.Devices {
		p.Reserve(d.Port)
	}
	for _, n := range s.rec.HW.NICs {
		p.Reserve(n.Port)
	}
	return p
}

// hotplugReady is the monitor and agent of a sandbox that can take a
// device now; caller holds s.mu.
func (s *Sandbox) hotplugReady(op string) (hotplug.Monitor, *agent.Client, error) {
	switch s.rec.State {
	case StateReady, StateRunning:
	default:
		return nil, nil, fmt.Errorf("%w: cannot %s: sandbox %s is %s (want ready or running)", ErrBusy, op, s.cfg.ID, s.rec.State)
	}
	if s.vm == nil || s.vm.mon == nil || s.vm.agentClient() == nil {
		return nil, nil, fmt.Errorf("%w: sandbox %s: no VM connection", ErrVM, s.cfg.ID)
	}
	return monitorAdapter{s.vm.mon}, s.vm.agentClient(), nil
}

// hotplugErr maps hotplug's sentinels onto ours.
func hotplugErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, hotplug.ErrNoSpace):
		return fmt.Errorf("%w: %s: %v", ErrNoSpace, what, err)
	case errors.Is(err, hotplug.ErrInvalid):
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	case errors.Is(err, hotplug.ErrNotFound):
		return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
	case errors.Is(err, hotplug.ErrExists):
		return fmt.Errorf("%w: %s: %v", ErrExists, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrVM, what, err)
}

// Devices is the devices file.
func (s *Sandbox) Devices(ctx context.Context) ([]Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Device(nil), s.rec.HW.Devices...), nil
}

// AddDevice is AddDevice: the disk is attached and the guest sees it.
func (s *Sandbox) AddDevice(ctx context.Context, cfg DeviceConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.addBlock(ctx, cfg)
	return err
}

// addBlock plugs a disk; caller holds s.mu.
func (s *Sandbox) addBlock(ctx context.Context, cfg DeviceConfig) (Device, error) {
	if cfg.Kind != "" && cfg.Kind != "block" {
		return Device{}, fmt.Errorf("%w: device kind %q: want block", ErrInvalid, cfg.Kind)
	}
	mon, cl, err := s.hotplugReady("add a device")
	if err != nil {
		return Device{}, err
	}
	if cfg.ID == "" {
		cfg.ID = s.freeDeviceID()
	}
	if err := ValidID(cfg.ID); err != nil {
		return Device{}, err
	}
	for _, d := range s.rec.HW.Devices {
		if d.ID == cfg.ID {
			return Device{}, fmt.Errorf("%w: device %s", ErrExists, cfg.ID)
		}
	}
	ports := s.ports()
	b := &hotplug.Block{ID: cfg.ID, Path: cfg.Path, ReadOnly: cfg.ReadOnly}
	if err := hotplug.AddBlock(ctx, mon, ports, b); err != nil {
		return Device{}, hotplugErr("add block "+cfg.Path, err)
	}
	guest, err := cl.WaitBlockDevice(ctx, cfg.ID)
	if err != nil {
		// Undo: the guest never saw it.
		hotplug.RemoveBlock(context.Background(), mon, ports, b)
		if ctx.Err() != nil {
			return Device{}, ctx.Err()
		}
		return Device{}, agentErr("guest did not see disk "+cfg.ID, err)
	}
	d := Device{ID: cfg.ID, Kind: "block", Path: cfg.Path, ReadOnly: cfg.ReadOnly, Format: b.Format, Guest: guest, Port: b.Port}
	s.rec.HW.Devices = append(s.rec.HW.Devices, d)
	if err := s.save(); err != nil {
		return d, err
	}
	s.log.WithField("device", d.ID).Infof("disk %s attached as %s", d.Path, d.Guest)
	return d, nil
}

func (s *Sandbox) freeDeviceID() string {
	for i := 0; ; i++ {
		id := "disk" + strconv.Itoa(i)
		taken := false
		for _, d := range s.rec.HW.Devices {
			taken = taken || d.ID == id
		}
		if !taken {
			return id
		}
	}
}

// RemoveDevice detaches a disk.
func (s *Sandbox) RemoveDevice(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removeBlock(ctx, id)
}

// removeBlock unplugs a disk; caller holds s.mu.
func (s *Sandbox) removeBlock(ctx context.Context, id string) error {
	i := -1
	for j, d := range s.rec.HW.Devices {
		if d.ID == id {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("%w: device %s", ErrNotFound, id)
	}
	if owner := s.deviceOwner(id); owner != "" {
		return fmt.Errorf("%w: device %s is the root of container %s: delete the container first", ErrBusy, id, owner)
	}
	d := s.rec.HW.Devices[i]
	mon, _, err := s.hotplugReady("remove a device")
	if err != nil {
		return err
	}
	ports := s.ports()
	if err := hotplug.RemoveBlock(ctx, mon, ports, &hotplug.Block{ID: d.ID, Path: d.Path, Port: d.Port}); err != nil {
		return hotplugErr("remove "+id, err)
	}
	s.rec.HW.Devices = append(s.rec.HW.Devices[:i], s.rec.HW.Devices[i+1:]...)
	s.log.WithField("device", id).Info("disk detached")
	return s.save()
}

// deviceOwner is the container whose root device id is, if any.
func (s *Sandbox) deviceOwner(id string) string {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	for cid, c := range s.ctrs {
		if c.rootDevice == id {
			return cid
		}
	}
	return ""
}

// Interfaces is ListInterfaces: the guest's view, with each host tap.
func (s *Sandbox) Interfaces(ctx context.Context) ([]NIC, error) {
	s.mu.Lock()
	recs := append([]nicRecord(nil), s.rec.HW.NICs...)
	s.mu.Unlock()
	cl, err := s.agentClient("list interfaces")
	if err != nil {
		return nil, err
	}
	got, err := cl.ListInterfaces(ctx)
	if err != nil {
		return nil, agentErr("list interfaces", err)
	}
	out := make([]NIC, 0, len(got))
	for _, i := range got {
		n := NIC{Name: i.Name, MAC: i.MAC, MTU: i.MTU, Addrs: i.Addrs}
		for _, r := range recs {
			if r.MAC == i.MAC {
				n.Tap = r.Tap
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// AddInterface is AddInterface: a tap in the sandbox's netns, a
// virtio-net device, and the guest side configured.
func (s *Sandbox) AddInterface(ctx context.Context, cfg NICConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.NetNS == "" {
		return fmt.Errorf("%w: sandbox %s has no network namespace: create it with netns=PATH", ErrInvalid, s.cfg.ID)
	}
	mon, cl, err := s.hotplugReady("add an interface")
	if err != nil {
		return err
	}
	for _, n := range s.rec.HW.NICs {
		if n.Name == cfg.Name {
			return fmt.Errorf("%w: interface %s", ErrExists, cfg.Name)
		}
	}
	ports := s.ports()
	n := &hotplug.NIC{Name: cfg.Name, MAC: cfg.MAC, MTU: cfg.MTU, NetNS: s.cfg.NetNS, Sandbox: s.cfg.ID}
	if err := hotplug.AddNIC(ctx, mon, ports, n); err != nil {
		return hotplugErr("add interface "+cfg.Name, err)
	}
	err = cl.AddInterface(ctx, agent.Interface{Name: n.Name, MAC: n.MAC, MTU: n.MTU, Addrs: cfg.Addrs})
	if err != nil {
		// Undo all of it: no tap, no netdev, no device left behind.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if rerr := hotplug.RemoveNIC(rctx, mon, ports, n); rerr != nil {
			s.log.WithError(rerr).Warn("rollback of a failed NIC")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return agentErr("configure interface "+cfg.Name+" in the guest", err)
	}
	s.rec.HW.NICs = append(s.rec.HW.NICs, nicRecord{Name: n.Name, MAC: n.MAC, MTU: n.MTU, Addrs: cfg.Addrs,
		Tap: n.Tap, NetNS: n.NetNS, Port: n.Port})
	s.log.WithField("nic", n.Name).Infof("interface added, host tap %s", n.Tap)
	return s.save()
}

// RemoveInterface undoes AddInterface, host tap included.
func (s *Sandbox) RemoveInterface(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := -1
	for j, n := range s.rec.HW.NICs {
		if n.Name == name {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("%w: interface %s (only interfaces added through this file can be removed)", ErrNotFound, name)
	}
	r := s.rec.HW.NICs[i]
	mon, cl, err := s.hotplugReady("remove an interface")
	if err != nil {
		return err
	}
	if err := cl.RemoveInterface(ctx, name); err != nil && !errors.Is(agentErr("", err), ErrNotFound) {
		return agentErr("remove interface "+name+" in the guest", err)
	}
	n := &hotplug.NIC{Name: r.Name, MAC: r.MAC, MTU: r.MTU, Tap: r.Tap, NetNS: r.NetNS, Port: r.Port}
	if err := hotplug.RemoveNIC(ctx, mon, s.ports(), n); err != nil {
		return hotplugErr("remove interface "+name, err)
	}
	s.rec.HW.NICs = append(s.rec.HW.NICs[:i], s.rec.HW.NICs[i+1:]...)
	s.log.WithField("nic", name).Info("interface removed")
	return s.save()
}

// Routes is ListRoutes, from the guest.
func (s *Sandbox) Routes(ctx context.Context) ([]Route, error) {
	cl, err := s.agentClient("list routes")
	if err != nil {
		return nil, err
	}
	got, err := cl.ListRoutes(ctx)
	if err != nil {
		return nil, agentErr("list routes", err)
	}
	out := make([]Route, 0, len(got))
	for _, r := range got {
		out = append(out, Route{Dest: r.Dest, Via: r.Gateway, Dev: r.Device})
	}
	return out, nil
}

// AddRoute is UpdateRoutes for one route.
func (s *Sandbox) AddRoute(ctx context.Context, r Route) error {
	cl, err := s.agentClient("add a route")
	if err != nil {
		return err
	}
	return agentErr("add route "+r.Dest, cl.AddRoute(ctx, agent.Route{Dest: r.Dest, Gateway: r.Via, Device: r.Dev}))
}

// DelRoute removes one route.
func (s *Sandbox) DelRoute(ctx context.Context, dest string) error {
	cl, err := s.agentClient("delete a route")
	if err != nil {
		return err
	}
	return agentErr("delete route "+dest, cl.DelRoute(ctx, dest))
}

// unplugAll deletes the host taps of a VM that is gone or going; its
// disks went with it. Caller holds s.mu.
func (s *Sandbox) unplugAll() {
	for _, n := range s.rec.HW.NICs {
		if err := hotplug.DeleteTap(n.NetNS, n.Tap); err != nil {
			s.log.WithError(err).WithField("tap", n.Tap).Warn("deleting a tap")
		}
	}
	s.rec.HW = hwState{}
}
