package hotplug

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeTaps replaces the netlink tap operations for one test.
type fakeTaps struct {
	mu      sync.Mutex
	taps    map[string]int // "netns/tap" -> mtu
	failNew error
	files   []*os.File // handed out; all must be closed at the end
}

func useFakeTaps(t *testing.T) *fakeTaps {
	ft := &fakeTaps{taps: map[string]int{}}
	oc, od := tapCreate, tapDelete
	tapCreate = func(ns, name string, mtu int) (*os.File, error) {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		if ft.failNew != nil {
			return nil, ft.failNew
		}
		if _, ok := ft.taps[ns+"/"+name]; ok {
			return nil, ErrExists
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		w.Close()
		ft.taps[ns+"/"+name] = mtu
		ft.files = append(ft.files, r)
		return r, nil
	}
	tapDelete = func(ns, name string) error {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		delete(ft.taps, ns+"/"+name)
		return nil
	}
	t.Cleanup(func() {
		tapCreate, tapDelete = oc, od
		for _, f := range ft.files {
			// A closed *os.File reports ErrClosed on Fd-using calls.
			if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("tap fd %s left open", f.Name())
			}
		}
	})
	return ft
}

func (ft *fakeTaps) count() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.taps)
}

func TestMACAndTapNames(t *testing.T) {
	a := GenerateMAC("sb1", "/run/netns/x", "eth1")
	if a != GenerateMAC("sb1", "/run/netns/x", "eth1") {
		t.Error("MAC not stable")
	}
	for _, other := range []string{GenerateMAC("sb2", "/run/netns/x", "eth1"), GenerateMAC("sb1", "/run/netns/x", "eth2")} {
		if other == a {
			t.Errorf("same MAC %s for different NICs", a)
		}
	}
	hw, err := net.ParseMAC(a)
	if err != nil || len(hw) != 6 || hw[0] != 0x02 || !strings.HasPrefix(a, "02:") {
		t.Errorf("MAC %q is not a locally administered unicast address", a)
	}
	tap := TapName("sb1", "", "eth1")
	if len(tap) != 15 || !strings.HasPrefix(tap, "kt-") || tap == TapName("sb1", "", "eth2") {
		t.Errorf("tap name %q", tap)
	}
}

func TestAddNICSequence(t *testing.T) {
	ft := useFakeTaps(t)
	f := newFake()
	ports := NewPorts([]string{"rp0", "rp1"})
	n := &NIC{Name: "eth1", MTU: 1400, Sandbox: "sb"}
	if err := AddNIC(ctxT(t), f, ports, n); err != nil {
		t.Fatal(err)
	}
	if n.MAC != GenerateMAC("sb", "", "eth1") || n.Tap != TapName("sb", "", "eth1") || n.Port != "rp0" {
		t.Errorf("filled MAC %q Tap %q Port %q", n.MAC, n.Tap, n.Port)
	}
	want := `getfd {"fdname":"fd-eth1"} +fd
netdev_add {"fd":"fd-eth1","id":"net-eth1","type":"tap","vhost":false}
device_add {"bus":"rp0","driver":"virtio-net-pci","host_mtu":1400,"id":"nic-eth1","mac":"` + n.MAC + `","netdev":"net-eth1","romfile":""}`
	if got := f.callsString(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	if ft.taps["/"+n.Tap] != 1400 {
		t.Errorf("taps %v", ft.taps)
	}

	// Default MTU: no host_mtu; a given MAC is normalised.
	m := &NIC{Name: "eth2", MAC: "AA:BB:cc:dd:ee:f0"}
	f.reset()
	if err := AddNIC(ctxT(t), f, ports, m); err != nil {
		t.Fatal(err)
	}
	if m.MTU != 1500 || m.MAC != "aa:bb:cc:dd:ee:f0" {
		t.Errorf("MTU %d MAC %s", m.MTU, m.MAC)
	}
	if s := f.callsString(); strings.Contains(s, "host_mtu") {
		t.Errorf("host_mtu with the default MTU: %s", s)
	}

	f.reset()
	if err := RemoveNIC(ctxT(t), f, ports, n); err != nil {
		t.Fatal(err)
	}
	want = `device_del {"id":"nic-eth1"}
netdev_del {"id":"net-eth1"}`
	if got := f.callsString(); got != want {
		t.Errorf("remove commands:\n%s\nwant:\n%s", got, want)
	}
	if err := RemoveNIC(ctxT(t), f, ports, m); err != nil {
		t.Fatal(err)
	}
	f.empty(t)
	if ft.count() != 0 || ports.InUse() != 0 {
		t.Errorf("taps %v, ports in use %d", ft.taps, ports.InUse())
	}
}

func TestAddNICRollback(t *testing.T) {
	for _, tc := range []struct {
		fail string
		want []string
	}{
		{"tap", nil},
		{"getfd", []string{"getfd"}},
		{"netdev_add", []string{"getfd", "netdev_add", "closefd"}},
		{"device_add", []string{"getfd", "netdev_add", "device_add", "netdev_del", "closefd"}},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			ft := useFakeTaps(t)
			f := newFake()
			if tc.fail == "tap" {
				ft.failNew = errors.New("boom")
			} else {
				f.fail[tc.fail] = errors.New("qmp " + tc.fail + ": GenericError: boom")
			}
			if tc.fail == "netdev_add" {
				// QEMU consumes the fd before it fails.
				f.onCall = func(cmd string) {
					if cmd == "netdev_add" {
						f.mu.Lock()
						delete(f.fds, "fd-eth1")
						f.mu.Unlock()
					}
				}
			}
			ports := NewPorts([]string{"rp0"})
			n := &NIC{Name: "eth1"}
			err := AddNIC(ctxT(t), f, ports, n)
			if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), tc.fail) {
				t.Fatalf("AddNIC: %v", err)
			}
			if got := f.seq(); !slices.Equal(got, tc.want) {
				t.Errorf("commands %v, want %v", got, tc.want)
			}
			f.empty(t)
			if ft.count() != 0 || ports.InUse() != 0 || n.Port != "" {
				t.Errorf("taps %v, ports in use %d", ft.taps, ports.InUse())
			}
		})
	}
}

func TestAddNICInvalid(t *testing.T) {
	useFakeTaps(t)
	for _, n := range []NIC{
		{Name: ""},
		{Name: "0eth"},
		{Name: "eth/1"},
		{Name: "averyveryverylongname"},
		{Name: "eth1", MTU: 10},
		{Name: "eth1", MTU: 70000},
		{Name: "eth1", MAC: "zz"},
		{Name: "eth1", MAC: "01:00:5e:00:00:01"},
		{Name: "eth1", MAC: "00:00:00:00:00:00"},
		{Name: "eth1", NetNS: "/nonexistent/netns"},
	} {
		f := newFake()
		ports := NewPorts([]string{"rp0"})
		if err := AddNIC(ctxT(t), f, ports, &n); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddNIC(%+v): %v, want ErrInvalid", n, err)
		}
		if len(f.seq()) != 0 || ports.InUse() != 0 {
			t.Errorf("%+v: commands %v", n, f.seq())
		}
	}
	f := newFake()
	if err := AddNIC(ctxT(t), f, NewPorts(nil), &NIC{Name: "eth1"}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("no ports: %v", err)
	}
}
