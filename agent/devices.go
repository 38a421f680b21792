package agent

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/katafs/katafs/agent/pb"
)

// Interface is a network interface of the guest.
type Interface struct {
	Name  string
	MAC   string // aa:bb:cc:dd:ee:ff
	MTU   int    // 0 in AddInterface: keep the driver's
	Addrs []string
	// CIDRs, IPv4 and IPv6 ("192.168.77.2/24"); ListInterfaces leaves out
	// the IPv6 link-local ones the kernel adds by itself.
}

// Route is a route of the guest's main table.
type Route struct {
	Dest    string // a CIDR or "default"
	Gateway string // "" if none
	Device  string
}

// BlockDevices finds the block devices the host hot-plugs, as Service
// uses it; Devices (linux) is the real one.
type BlockDevices interface {
	WaitBlockDevice(ctx context.Context, serial string) (string, error)
}

// Network configures the guest's interfaces and routes, as Service uses
// it; Devices (linux) is the real one. Its methods mirror Client's.
type Network interface {
	AddInterface(ctx context.Context, i Interface) error
	RemoveInterface(ctx context.Context, name string) error
	ListInterfaces(ctx context.Context) ([]Interface, error)
	AddRoute(ctx context.Context, r Route) error
	DelRoute(ctx context.Context, dest string) error
	ListRoutes(ctx context.Context) ([]Route, error)
}

// maxDeviceWait bounds the guest's wait for a device when the request
// carries no deadline: ttrpc passes deadlines, not cancellation, so a
// request without one could otherwise wait forever.
var maxDeviceWait = 2 * time.Minute

// Host side.

// WaitBlockDevice waits until the guest has a block device whose serial
// (/sys/block/*/serial, the virtio-blk serial the host set in device_add)
// is serial, and returns its guest path ("/dev/vda"). The guest waits on
// uevents, until ctx's deadline (at most maxDeviceWait without one);
// NotFound if the device did not show up by then.
func (c *Client) WaitBlockDevice(ctx context.Context, serial string) (string, error) {
	resp, err := c.api.WaitBlockDevice(ctx, &pb.WaitBlockDeviceRequest{Serial: serial})
	if err != nil {
		return "", fmt.Errorf("agent: wait block device %s: %w", serial, err)
	}
	return resp.GetPath(), nil
}

// AddInterface configures the NIC whose MAC is i.MAC, waiting for it to
// show up as WaitBlockDevice does: renames it i.Name, sets the MTU (if
// not 0), adds the addresses and sets it up. NotFound if it never showed
// up, AlreadyExists if another link is named i.Name, InvalidArgument for
// a bad name, MAC or CIDR.
func (c *Client) AddInterface(ctx context.Context, i Interface) error {
	if _, err := c.api.AddInterface(ctx, &pb.AddInterfaceRequest{Interface: ifaceToPB(i)}); err != nil {
		return fmt.Errorf("agent: add interface %s: %w", i.Name, err)
	}
	return nil
}

// RemoveInterface removes the addresses of interface name and sets it
// down; the host unplugs it then. NotFound if there is no such link.
func (c *Client) RemoveInterface(ctx context.Context, name string) error {
	if _, err := c.api.RemoveInterface(ctx, &pb.RemoveInterfaceRequest{Name: name}); err != nil {
		return fmt.Errorf("agent: remove interface %s: %w", name, err)
	}
	return nil
}

// ListInterfaces lists every link of the guest but lo.
func (c *Client) ListInterfaces(ctx context.Context) ([]Interface, error) {
	resp, err := c.api.ListInterfaces(ctx, &pb.ListInterfacesRequest{})
	if err != nil {
		return nil, fmt.Errorf("agent: list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(resp.GetInterfaces()))
	for _, i := range resp.GetInterfaces() {
		out = append(out, ifaceFromPB(i))
	}
	return out, nil
}

// AddRoute adds a route to the main table. InvalidArgument for a bad
// destination or gateway, NotFound for an unknown device, AlreadyExists
// if the route exists.
func (c *Client) AddRoute(ctx context.Context, r Route) error {
	_, err := c.api.AddRoute(ctx, &pb.AddRouteRequest{Route: &pb.Route{Dest: r.Dest, Gateway: r.Gateway, Device: r.Device}})
	if err != nil {
		return fmt.Errorf("agent: add route %s: %w", r.Dest, err)
	}
	return nil
}

// DelRoute deletes the main table's routes to dest (a CIDR or
// "default"); NotFound if there is none.
func (c *Client) DelRoute(ctx context.Context, dest string) error {
	if _, err := c.api.DelRoute(ctx, &pb.DelRouteRequest{Dest: dest}); err != nil {
		return fmt.Errorf("agent: del route %s: %w", dest, err)
	}
	return nil
}

// ListRoutes lists the main table, IPv4 then IPv6 (without the IPv6
// link-local routes the kernel adds to each link).
func (c *Client) ListRoutes(ctx context.Context) ([]Route, error) {
	resp, err := c.api.ListRoutes(ctx, &pb.ListRoutesRequest{})
	if err != nil {
		return nil, fmt.Errorf("agent: list routes: %w", err)
	}
	out := make([]Route, 0, len(resp.GetRoutes()))
	for _, r := range resp.GetRoutes() {
		out = append(out, Route{Dest: r.GetDest(), Gateway: r.GetGateway(), Device: r.GetDevice()})
	}
	return out, nil
}

func ifaceToPB(i Interface) *pb.Interface {
	return &pb.Interface{Name: i.Name, Mac: i.MAC, Mtu: int32(i.MTU), Addrs: i.Addrs}
}

func ifaceFromPB(i *pb.Interface) Interface {
	return Interface{Name: i.GetName(), MAC: i.GetMac(), MTU: int(i.GetMtu()), Addrs: i.GetAddrs()}
}

// Guest side: the ttrpc handlers.

func (s *Service) blockDevices() (BlockDevices, error) {
	if s.cfg.Devices == nil {
		return nil, status.Error(codes.Unimplemented, "this agent handles no block devices")
	}
	return s.cfg.Devices, nil
}

func (s *Service) network() (Network, error) {
	if s.cfg.Network == nil {
		return nil, status.Error(codes.Unimplemented, "this agent configures no network")
	}
	return s.cfg.Network, nil
}

// deviceCtx caps a wait of a request without a deadline.
func deviceCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, maxDeviceWait)
}

// WaitBlockDevice implements pb.AgentServiceService.
func (s *Service) WaitBlockDevice(ctx context.Context, req *pb.WaitBlockDeviceRequest) (*pb.WaitBlockDeviceResponse, error) {
	d, err := s.blockDevices()
	if err != nil {
		return nil, err
	}
	ctx, cancel := deviceCtx(ctx)
	defer cancel()
	p, err := d.WaitBlockDevice(ctx, req.GetSerial())
	if err != nil {
		return nil, err
	}
	return &pb.WaitBlockDeviceResponse{Path: p}, nil
}

// AddInterface implements pb.AgentServiceService.
func (s *Service) AddInterface(ctx context.Context, req *pb.AddInterfaceRequest) (*pb.Empty, error) {
	n, err := s.network()
	if err != nil {
		return nil, err
	}
	if req.GetInterface() == nil {
		return nil, status.Error(codes.InvalidArgument, "no interface")
	}
	ctx, cancel := deviceCtx(ctx)
	defer cancel()
	if err := n.AddInterface(ctx, ifaceFromPB(req.GetInterface())); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// RemoveInterface implements pb.AgentServiceService.
func (s *Service) RemoveInterface(ctx context.Context, req *pb.RemoveInterfaceRequest) (*pb.Empty, error) {
	n, err := s.network()
	if err != nil {
		return nil, err
	}
	if err := n.RemoveInterface(ctx, req.GetName()); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// ListInterfaces implements pb.AgentServiceService.
func (s *Service) ListInterfaces(ctx context.Context, _ *pb.ListInterfacesRequest) (*pb.ListInterfacesResponse, error) {
	n, err := s.network()
	if err != nil {
		return nil, err
	}
	ifs, err := n.ListInterfaces(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListInterfacesResponse{}
	for _, i := range ifs {
		resp.Interfaces = append(resp.Interfaces, ifaceToPB(i))
	}
	return resp, nil
}

// AddRoute implements pb.AgentServiceService.
func (s *Service) AddRoute(ctx context.Context, req *pb.AddRouteRequest) (*pb.Empty, error) {
	n, err := s.network()
	if err != nil {
		return nil, err
	}
	r := req.GetRoute()
	if r == nil {
		return nil, status.Error(codes.InvalidArgument, "no route")
	}
	if err := n.AddRoute(ctx, Route{Dest: r.GetDest(), Gateway: r.GetGateway(), Device: r.GetDevice()}); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// DelRoute implements pb.AgentServiceService.
func (s *Service) DelRoute(ctx context.Context, req *pb.DelRouteRequest) (*pb.Empty, error) {
	n, err := s.network()
	if err != nil {
		return nil, err
	}
	if err := n.DelRoute(ctx, req.GetDest()); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// ListRoutes implements pb.AgentServiceService.
func (s *Service) ListRoutes(ctx context.Context, _ *pb.ListRoutesRequest) (*pb.ListRoutesResponse, error) {
	n, err := s.network()
	if err != nil {
		return nil, err
	}
	rs, err := n.ListRoutes(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListRoutesResponse{}
	for _, r := range rs {
		resp.Routes = append(resp.Routes, &pb.Route{Dest: r.Dest, Gateway: r.Gateway, Device: r.Device})
	}
	return resp, nil
}
