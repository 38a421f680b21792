package agent

import (
	"context"
	"net"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNetns makes a network namespace for the test and a netlink handle
// in it; the agent's own namespace is not touched.
func testNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	if unix.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // this thread moves into it
	if err != nil {
		t.Skipf("new network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatalf("back to the original netns: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
	})
	return h
}

// addNIC adds a veth pair whose first end stands in for a hot-plugged
// NIC (dummy links need a module not every host has); the peer, named
// name+"p", is up so that the NIC has a carrier.
func addNIC(h *netlink.Handle, name, mac string) error {
	hw, _ := net.ParseMAC(mac)
	err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: hw}, PeerName: name + "p"})
	if err != nil {
		return err
	}
	peer, err := h.LinkByName(name + "p")
	if err != nil {
		return err
	}
	return h.LinkSetUp(peer)
}

// named picks the interface name from a list.
func named(ifs []Interface, name string) (Interface, bool) {
	for _, i := range ifs {
		if i.Name == name {
			return i, true
		}
	}
	return Interface{}, false
}

func TestNetworkInNetns(t *testing.T) {
	h := testNetns(t)
	// uevents of other namespaces' links do not reach us: the poll finds them.
	d := NewDevices(DevicesConfig{Netlink: h, Poll: 5 * time.Millisecond})
	c := deviceClient(t, ServiceConfig{Network: d})
	ctx := testCtx(t, 30*time.Second)

	// The NIC shows up while AddInterface waits.
	added := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		added <- addNIC(h, "veth7", "02:00:00:00:00:09")
	}()
	want := Interface{Name: "eth1", MAC: "02:00:00:00:00:09", MTU: 1400, Addrs: []string{"192.168.77.2/24"}}
	if err := c.AddInterface(ctx, want); err != nil {
		t.Fatalf("AddInterface: %v (adding the NIC: %v)", err, <-added)
	}
	// Again: nothing changes, no error.
	if err := c.AddInterface(ctx, want); err != nil {
		t.Fatalf("AddInterface again: %v", err)
	}
	ifs, err := c.ListInterfaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := named(ifs, "eth1"); len(ifs) != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("ListInterfaces = %+v, want %+v and its veth peer", ifs, want)
	}
	for _, i := range ifs {
		if i.Name == "lo" {
			t.Errorf("ListInterfaces lists lo")
		}
	}
	l, err := h.LinkByName("eth1")
	if err != nil || l.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("eth1 not up: %v", err)
	}

	// Another NIC may not take the name.
	if err := addNIC(h, "veth8", "02:00:00:00:00:0a"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddInterface(ctx, Interface{Name: "eth1", MAC: "02:00:00:00:00:0a"}); !IsAlreadyExists(err) {
		t.Errorf("AddInterface to a taken name = %v, want AlreadyExists", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if err := c.AddInterface(short, Interface{Name: "eth2", MAC: "02:00:00:00:00:0b"}); err == nil {
		t.Errorf("AddInterface of a NIC that never comes succeeded")
	}
	cancel()
	if err := c.AddInterface(ctx, Interface{Name: "eth2", MAC: "02:00:00:00:00:0a", Addrs: []string{"10.0.0.1"}}); !IsInvalidArgument(err) {
		t.Errorf("AddInterface with a bad CIDR = %v, want InvalidArgument", err)
	}

	// Routes.
	def := Route{Dest: "default", Gateway: "192.168.77.1", Device: "eth1"}
	if err := c.AddRoute(ctx, def); err != nil {
		t.Fatalf("AddRoute: %v", err)
	}
	if err := c.AddRoute(ctx, Route{Dest: "10.9.0.0/16", Device: "eth1"}); err != nil {
		t.Fatalf("AddRoute direct: %v", err)
	}
	if err := c.AddRoute(ctx, def); !IsAlreadyExists(err) {
		t.Errorf("AddRoute twice = %v, want AlreadyExists", err)
	}
	if err := c.AddRoute(ctx, Route{Dest: "10.0.0.0/8", Device: "nosuch0"}); !IsNotFound(err) {
		t.Errorf("AddRoute via an unknown device = %v, want NotFound", err)
	}
	if err := c.AddRoute(ctx, Route{Dest: "10.0.0.1/8", Device: "eth1"}); !IsInvalidArgument(err) {
		t.Errorf("AddRoute with host bits = %v, want InvalidArgument", err)
	}
	rs, err := c.ListRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRoutes := []Route{def, {Dest: "10.9.0.0/16", Device: "eth1"}, {Dest: "192.168.77.0/24", Device: "eth1"}}
	if !sameRoutes(rs, wantRoutes) {
		t.Errorf("ListRoutes = %+v, want %+v", rs, wantRoutes)
	}
	if err := c.DelRoute(ctx, "default"); err != nil {
		t.Fatalf("DelRoute: %v", err)
	}
	if err := c.DelRoute(ctx, "default"); !IsNotFound(err) {
		t.Errorf("DelRoute twice = %v, want NotFound", err)
	}
	if err := c.DelRoute(ctx, "bogus"); !IsInvalidArgument(err) {
		t.Errorf("DelRoute(bogus) = %v, want InvalidArgument", err)
	}
	if rs, _ := c.ListRoutes(ctx); !sameRoutes(rs, wantRoutes[1:]) {
		t.Errorf("ListRoutes after DelRoute = %+v", rs)
	}

	if err := c.RemoveInterface(ctx, "eth1"); err != nil {
		t.Fatalf("RemoveInterface: %v", err)
	}
	if err := c.RemoveInterface(ctx, "eth9"); !IsNotFound(err) {
		t.Errorf("RemoveInterface(eth9) = %v, want NotFound", err)
	}
	ifs, _ = c.ListInterfaces(ctx)
	if i, ok := named(ifs, "eth1"); !ok || len(i.Addrs) != 0 {
		t.Errorf("eth1 after RemoveInterface: %+v, %v", i, ok)
	}
	if l, err := h.LinkByName("eth1"); err != nil || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("eth1 still up after RemoveInterface (%v)", err)
	}
	if rs, _ := c.ListRoutes(ctx); len(rs) != 0 {
		t.Errorf("routes left after RemoveInterface: %+v", rs)
	}
}

func sameRoutes(got, want []Route) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[Route]int{}
	for _, r := range got {
		seen[r]++
	}
	for _, r := range want {
		if seen[r] == 0 {
			return false
		}
		seen[r]--
	}
	return true
}

func TestRoutesOf(t *testing.T) {
	cidr := func(s string) *net.IPNet { _, n, _ := net.ParseCIDR(s); return n }
	names := map[int]string{2: "eth0", 3: "eth1"}
	rs := []netlink.Route{
		{Family: netlink.FAMILY_V6, Dst: cidr("fe80::/64"), LinkIndex: 2},
		{Family: netlink.FAMILY_V6, Dst: cidr("::/0"), Gw: net.ParseIP("fd00::1"), LinkIndex: 2},
		{Family: netlink.FAMILY_V4, Dst: cidr("0.0.0.0/0"), Gw: net.ParseIP("192.168.77.1").To4(), LinkIndex: 3},
		{Family: netlink.FAMILY_V4, Dst: cidr("10.0.0.0/8"), LinkIndex: 2, Type: unix.RTN_UNICAST},
		{Family: netlink.FAMILY_V4, Dst: cidr("10.66.0.0/16"), Type: unix.RTN_BLACKHOLE},
	}
	want := []Route{
		{Dest: "default", Gateway: "192.168.77.1", Device: "eth1"},
		{Dest: "10.0.0.0/8", Device: "eth0"},
		{Dest: "default", Gateway: "fd00::1", Device: "eth0"},
	}
	if got := routesOf(rs, names); !reflect.DeepEqual(got, want) {
		t.Errorf("routesOf = %+v, want %+v", got, want)
	}
}

func TestInterfaceOf(t *testing.T) {
	hw, _ := net.ParseMAC("02:00:00:00:00:09")
	a := &netlink.LinkAttrs{Name: "eth1", HardwareAddr: hw, MTU: 1400}
	ip := func(s string) *net.IPNet { i, n, _ := net.ParseCIDR(s); n.IP = i; return n }
	got := interfaceOf(a, []netlink.Addr{{IPNet: ip("192.168.77.2/24")}, {IPNet: ip("fe80::9/64")}, {IPNet: ip("fd00::2/64")}})
	want := Interface{Name: "eth1", MAC: "02:00:00:00:00:09", MTU: 1400, Addrs: []string{"192.168.77.2/24", "fd00::2/64"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("interfaceOf = %+v, want %+v", got, want)
	}
}
