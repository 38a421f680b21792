package agent

import (
	"net"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Checking and formatting network requests, apart from netlink so that
// it is tested anywhere. Errors are InvalidArgument statuses.

// ifNameMax is IFNAMSIZ without the NUL.
const ifNameMax = 15

func checkIfName(name string) error {
	if name == "" || len(name) > ifNameMax || name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n") {
		return status.Errorf(codes.InvalidArgument, "bad interface name %q", name)
	}
	return nil
}

// ifaceConfig is a checked AddInterface request.
type ifaceConfig struct {
	name  string
	mac   net.HardwareAddr
	mtu   int
	addrs []*net.IPNet // each with its host address, as "192.168.77.2/24"
}

func parseInterface(i Interface) (*ifaceConfig, error) {
	if err := checkIfName(i.Name); err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(i.MAC)
	if err != nil || len(mac) != 6 {
		return nil, status.Errorf(codes.InvalidArgument, "bad MAC %q", i.MAC)
	}
	if i.MTU < 0 || i.MTU > 65535 || (i.MTU > 0 && i.MTU < 68) {
		return nil, status.Errorf(codes.InvalidArgument, "bad MTU %d", i.MTU)
	}
	cfg := &ifaceConfig{name: i.Name, mac: mac, mtu: i.MTU}
	for _, a := range i.Addrs {
		ip, n, err := net.ParseCIDR(a)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad address %q: want a CIDR", a)
		}
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		cfg.addrs = append(cfg.addrs, &net.IPNet{IP: ip, Mask: n.Mask})
	}
	return cfg, nil
}

// routeConfig is a checked AddRoute request.
type routeConfig struct {
	dst *net.IPNet
	gw  net.IP // nil if none
	dev string // "" if none
}

// parseDest reads a route destination: a CIDR without host bits, or
// "default" (family: 4 or 6, for "default" the gateway's; 0 means 4).
func parseDest(dest string, family int) (*net.IPNet, error) {
	if dest == "default" {
		if family == 6 {
			return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, nil
		}
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, nil
	}
	ip, n, err := net.ParseCIDR(dest)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "bad destination %q: want a CIDR or default", dest)
	}
	if !ip.Equal(n.IP) {
		return nil, status.Errorf(codes.InvalidArgument, "destination %q has host bits set (network is %s)", dest, n)
	}
	return n, nil
}

func ipFamily(ip net.IP) int {
	if ip.To4() != nil {
		return 4
	}
	return 6
}

func parseRoute(r Route) (*routeConfig, error) {
	rc := &routeConfig{dev: r.Device}
	family := 0
	if r.Gateway != "" {
		rc.gw = net.ParseIP(r.Gateway)
		if rc.gw == nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad gateway %q", r.Gateway)
		}
		if g4 := rc.gw.To4(); g4 != nil {
			rc.gw = g4
		}
		family = ipFamily(rc.gw)
	}
	if r.Device != "" {
		if err := checkIfName(r.Device); err != nil {
			return nil, err
		}
	} else if rc.gw == nil {
		return nil, status.Error(codes.InvalidArgument, "route needs a device or a gateway")
	}
	dst, err := parseDest(r.Dest, family)
	if err != nil {
		return nil, err
	}
	if rc.gw != nil && ipFamily(dst.IP) != family {
		return nil, status.Errorf(codes.InvalidArgument, "gateway %s and destination %s of different families", r.Gateway, r.Dest)
	}
	rc.dst = dst
	return rc, nil
}

// formatDest is the Dest of a listed route: "default" for a /0.
func formatDest(n *net.IPNet) string {
	if n == nil {
		return "default"
	}
	if ones, _ := n.Mask.Size(); ones == 0 && n.IP.IsUnspecified() {
		return "default"
	}
	return n.String()
}

// hiddenAddr reports whether a listed address or route destination is
// one the kernel adds to every IPv6 link by itself (fe80::/10, ff00::/8):
// listing them would only hide what the host configured.
func hiddenAddr(ip net.IP) bool {
	return ip.To4() == nil && (ip.IsLinkLocalUnicast() || ip.IsMulticast())
}
