package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// LinkUp sets IFF_UP on the named interface, as `ip link set NAME up`. For
// lo the kernel then adds 127.0.0.1 and ::1 by itself.
func LinkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("agent: link %s up: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("agent: link %s up: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("agent: link %s up: get flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("agent: link %s up: set flags: %w", name, err)
	}
	return nil
}

// listRetries bounds the retries of a netlink dump that a concurrent
// change interrupted.
const listRetries = 5

func (d *Devices) links() ([]netlink.Link, error) {
	var err error
	for i := 0; i < listRetries; i++ {
		var ls []netlink.Link
		if ls, err = d.nl.LinkList(); err == nil {
			return ls, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, status.Errorf(codes.Internal, "list links: %v", err)
}

func (d *Devices) addrs(l netlink.Link) ([]netlink.Addr, error) {
	var err error
	for i := 0; i < listRetries; i++ {
		var as []netlink.Addr
		if as, err = d.nl.AddrList(l, netlink.FAMILY_ALL); err == nil {
			return as, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, status.Errorf(codes.Internal, "list addresses of %s: %v", l.Attrs().Name, err)
}

func (d *Devices) routes() ([]netlink.Route, error) {
	var err error
	for i := 0; i < listRetries; i++ {
		var rs []netlink.Route
		rs, err = d.nl.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err == nil {
			return rs, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, status.Errorf(codes.Internal, "list routes: %v", err)
}

// linkByName is NotFound for a missing link.
func (d *Devices) linkByName(name string) (netlink.Link, error) {
	l, err := d.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, status.Errorf(codes.NotFound, "no interface %s", name)
		}
		return nil, status.Errorf(codes.Internal, "interface %s: %v", name, err)
	}
	return l, nil
}

// AddInterface implements Network.
func (d *Devices) AddInterface(ctx context.Context, i Interface) error {
	cfg, err := parseInterface(i)
	if err != nil {
		return err
	}
	var link netlink.Link
	err = d.wait(ctx, "interface with MAC "+cfg.mac.String(), func() (bool, error) {
		ls, err := d.links()
		if err != nil {
			return false, err
		}
		link = nil
		for _, l := range ls {
			a := l.Attrs()
			if bytes.Equal(a.HardwareAddr, cfg.mac) {
				link = l
			} else if a.Name == cfg.name {
				return false, status.Errorf(codes.AlreadyExists, "interface %s exists with MAC %s", cfg.name, a.HardwareAddr)
			}
		}
		return link != nil, nil
	})
	if err != nil {
		return err
	}
	a := link.Attrs()
	log := logrus.WithFields(logrus.Fields{"interface": cfg.name, "mac": cfg.mac.String()})
	if a.Name != cfg.name {
		// A link is renamed only while down.
		if err := d.nl.LinkSetDown(link); err != nil {
			return status.Errorf(codes.Internal, "set %s down: %v", a.Name, err)
		}
		if err := d.nl.LinkSetName(link, cfg.name); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return status.Errorf(codes.AlreadyExists, "interface %s exists", cfg.name)
			}
			return status.Errorf(codes.Internal, "rename %s to %s: %v", a.Name, cfg.name, err)
		}
		log.WithField("was", a.Name).Debug("agent: interface renamed")
	}
	if cfg.mtu > 0 && a.MTU != cfg.mtu {
		if err := d.nl.LinkSetMTU(link, cfg.mtu); err != nil {
			code := codes.Internal
			if errors.Is(err, unix.EINVAL) {
				code = codes.InvalidArgument
			}
			return status.Errorf(code, "set MTU of %s to %d: %v", cfg.name, cfg.mtu, err)
		}
	}
	for _, n := range cfg.addrs {
		// Replace: adding the same address twice is no error.
		if err := d.nl.AddrReplace(link, &netlink.Addr{IPNet: n}); err != nil {
			return status.Errorf(codes.Internal, "add address %s to %s: %v", n, cfg.name, err)
		}
	}
	if err := d.nl.LinkSetUp(link); err != nil {
		return status.Errorf(codes.Internal, "set %s up: %v", cfg.name, err)
	}
	log.Debug("agent: interface configured")
	return nil
}

// RemoveInterface implements Network.
func (d *Devices) RemoveInterface(ctx context.Context, name string) error {
	if err := checkIfName(name); err != nil {
		return err
	}
	link, err := d.linkByName(name)
	if err != nil {
		return err
	}
	as, err := d.addrs(link)
	if err != nil {
		return err
	}
	for _, a := range as {
		if err := d.nl.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return status.Errorf(codes.Internal, "delete address %s of %s: %v", a.IPNet, name, err)
		}
	}
	if err := d.nl.LinkSetDown(link); err != nil {
		return status.Errorf(codes.Internal, "set %s down: %v", name, err)
	}
	return nil
}

// ListInterfaces implements Network.
func (d *Devices) ListInterfaces(ctx context.Context) ([]Interface, error) {
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	var out []Interface
	for _, l := range ls {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := d.addrs(l)
		if err != nil {
			return nil, err
		}
		out = append(out, interfaceOf(a, as))
	}
	return out, nil
}

// interfaceOf is the listed form of a link and its addresses.
func interfaceOf(a *netlink.LinkAttrs, as []netlink.Addr) Interface {
	i := Interface{Name: a.Name, MAC: a.HardwareAddr.String(), MTU: a.MTU, Addrs: []string{}}
	for _, ad := range as {
		if ad.IPNet == nil || hiddenAddr(ad.IP) {
			continue
		}
		i.Addrs = append(i.Addrs, ad.IPNet.String())
	}
	return i
}

// AddRoute implements Network.
func (d *Devices) AddRoute(ctx context.Context, r Route) error {
	rc, err := parseRoute(r)
	if err != nil {
		return err
	}
	nr := &netlink.Route{Dst: rc.dst, Gw: rc.gw, Table: unix.RT_TABLE_MAIN}
	if rc.dev != "" {
		link, err := d.linkByName(rc.dev)
		if err != nil {
			return err
		}
		nr.LinkIndex = link.Attrs().Index
	}
	if rc.gw == nil {
		nr.Scope = netlink.SCOPE_LINK
	}
	if err := d.nl.RouteAdd(nr); err != nil {
		switch {
		case errors.Is(err, unix.EEXIST):
			return status.Errorf(codes.AlreadyExists, "route to %s exists", r.Dest)
		case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EINVAL):
			return status.Errorf(codes.InvalidArgument, "add route to %s: %v", r.Dest, err)
		case errors.Is(err, unix.ENODEV):
			return status.Errorf(codes.NotFound, "add route to %s: %v", r.Dest, err)
		}
		return status.Errorf(codes.Internal, "add route to %s: %v", r.Dest, err)
	}
	return nil
}

// DelRoute implements Network: every main-table route to dest goes (of
// both families for "default").
func (d *Devices) DelRoute(ctx context.Context, dest string) error {
	var want []*net.IPNet
	if dest == "default" {
		v4, _ := parseDest(dest, 4)
		v6, _ := parseDest(dest, 6)
		want = []*net.IPNet{v4, v6}
	} else {
		n, err := parseDest(dest, 0)
		if err != nil {
			return err
		}
		want = []*net.IPNet{n}
	}
	rs, err := d.routes()
	if err != nil {
		return err
	}
	found := false
	for _, r := range rs {
		if r.Dst == nil || !sameNet(r.Dst, want) {
			continue
		}
		found = true
		if err := d.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return status.Errorf(codes.Internal, "delete route to %s: %v", dest, err)
		}
	}
	if !found {
		return status.Errorf(codes.NotFound, "no route to %s", dest)
	}
	return nil
}

func sameNet(n *net.IPNet, in []*net.IPNet) bool {
	for _, w := range in {
		if n.IP.Equal(w.IP) && bytes.Equal(n.Mask, w.Mask) {
			return true
		}
	}
	return false
}

// ListRoutes implements Network.
func (d *Devices) ListRoutes(ctx context.Context) ([]Route, error) {
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, l := range ls {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	rs, err := d.routes()
	if err != nil {
		return nil, err
	}
	return routesOf(rs, names), nil
}

// routesOf is the listed form of the main table's routes, IPv4 first.
func routesOf(rs []netlink.Route, names map[int]string) []Route {
	var v4, v6 []Route
	for _, r := range rs {
		if r.Dst != nil && hiddenAddr(r.Dst.IP) {
			continue
		}
		if r.Type != 0 && r.Type != unix.RTN_UNICAST {
			continue // unreachable, blackhole, ...: none are made here
		}
		out := Route{Dest: formatDest(r.Dst), Device: names[r.LinkIndex]}
		if r.Gw != nil {
			out.Gateway = r.Gw.String()
		}
		if r.Family == netlink.FAMILY_V6 || (r.Dst != nil && r.Dst.IP.To4() == nil) {
			v6 = append(v6, out)
		} else {
			v4 = append(v4, out)
		}
	}
	return append(v4, v6...)
}
