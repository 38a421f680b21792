package fs

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/katafs/katafs/sandbox"
)

func words(t *testing.T, line string) []string {
	t.Helper()
	w, err := tokenize(line)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestParseAddDevice(t *testing.T) {
	for _, tc := range []struct {
		line string
		want sandbox.DeviceConfig
	}{
		{"block /img/a.raw", sandbox.DeviceConfig{Kind: "block", Path: "/img/a.raw"}},
		{"block /img/a.raw ro id=data", sandbox.DeviceConfig{Kind: "block", Path: "/img/a.raw", ReadOnly: true, ID: "data"}},
		{"block '/img/a b' ro=true", sandbox.DeviceConfig{Kind: "block", Path: "/img/a b", ReadOnly: true}},
		{"block /x ro=false", sandbox.DeviceConfig{Kind: "block", Path: "/x"}},
	} {
		got, err := parseAddDevice(words(t, tc.line))
		if err != nil || got != tc.want {
			t.Errorf("parseAddDevice(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseHotplugErrors(t *testing.T) {
	type parser func([]string) error
	dev := func(a []string) error { _, err := parseAddDevice(a); return err }
	rmDev := func(a []string) error { _, err := parseRemoveDevice(a); return err }
	nic := func(a []string) error { _, err := parseAddInterface(a); return err }
	rmNIC := func(a []string) error { _, err := parseRemoveInterface(a); return err }
	route := func(a []string) error { _, err := parseAddRoute(a); return err }
	del := func(a []string) error { _, err := parseDelRoute(a); return err }
	for _, tc := range []struct {
		parse parser
		line  string
		msg   string
	}{
		{dev, "", "missing arguments"},
		{dev, "block", "missing arguments"},
		{dev, "disk /x", `device kind "disk": want block`},
		{dev, "block x.img", `path "x.img": want an absolute path`},
		{dev, "block ./x.img", "absolute path"},
		{dev, "block /x id=../y", "bad id"},
		{dev, "block /x id=", "empty value"},
		{dev, "block /x id", "needs a value"},
		{dev, "block /x ro=maybe", "ro=maybe"},
		{dev, "block /x ro ro", "given twice"},
		{dev, "block /x id=a id=b", "given twice"},
		{dev, "block /x rw", `unexpected argument "rw"`},
		{dev, "block /x cache=none", `unknown option "cache"`},
		{rmDev, "", "want remove NAME"},
		{rmDev, "a b", "want remove NAME"},
		{rmDev, "'a/b'", "bad id"},
		{nic, "", "missing NAME"},
		{nic, "addr=10.0.0.1/24", "missing NAME"},
		{nic, "eth1 addr=10.0.0.1", "addr=10.0.0.1: want an address with prefix length"},
		{nic, "eth1 addr=300.0.0.1/24", "addr=300.0.0.1/24"},
		{nic, "eth1 mac=zz:00:00:00:00:01", "mac=zz:00:00:00:00:01"},
		{nic, "eth1 mac=02:00:00:00:00:00:00:01", "Ethernet address"},
		{nic, "eth1 mac=01:00:5e:00:00:01", "multicast"},
		{nic, "eth1 mtu=10", "mtu=10: want 68 to 65535"},
		{nic, "eth1 mtu=65536", "want 68 to 65535"},
		{nic, "eth1 mtu=-1", "want 68 to 65535"},
		{nic, "eth1 mtu=1500 mtu=9000", "given twice"},
		{nic, "eth1 speed=10", `unknown option "speed"`},
		{nic, "a234567890123456", "longer than 15"},
		{nic, "'a/b'", "interface name"},
		{nic, "'a b'", "interface name"},
		{nic, "..", "interface name"},
		{nic, "eth0:1", "interface name"},
		{rmNIC, "", "want remove NAME"},
		{rmNIC, "a/b", "interface name"},
		{route, "", "missing DEST"},
		{route, "dev=eth1", "missing DEST"},
		{route, "10.1.0.0/16", "missing dev=NAME"},
		{route, "10.1.0.0/16 via=10.0.0.1", "missing dev=NAME"},
		{route, "10.1.0.0 dev=eth1", `destination "10.1.0.0"`},
		{route, "nowhere dev=eth1", `destination "nowhere"`},
		{route, "10.1.0.1/16 dev=eth1", "host bits set: want 10.1.0.0/16"},
		{route, "10.1.0.0/16 via=gw dev=eth1", "via=gw: want an IP address"},
		{route, "10.1.0.0/16 via=fe80::1 dev=eth1", "address family"},
		{route, "default dev=a/b", "interface name"},
		{route, "default dev=eth1 dev=eth2", "given twice"},
		{route, "default dev=eth1 metric=5", `unknown option "metric"`},
		{del, "", "want del DEST"},
		{del, "default dev=eth1", "want del DEST"},
		{del, "10.1.0.1/16", "host bits"},
	} {
		err := tc.parse(words(t, tc.line))
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: err = %v; want ErrInvalid with %q", tc.line, err, tc.msg)
		}
	}
}

func TestParseAddInterface(t *testing.T) {
	for _, tc := range []struct {
		line string
		want sandbox.NICConfig
	}{
		{"eth1", sandbox.NICConfig{Name: "eth1"}},
		{"eth1 addr=192.168.77.2/24 addr=fd00::2/64 mac=02:00:00:00:00:AB mtu=9000",
			sandbox.NICConfig{Name: "eth1", Addrs: []string{"192.168.77.2/24", "fd00::2/64"}, MAC: "02:00:00:00:00:ab", MTU: 9000}},
		{"a23456789012345 mtu=68", sandbox.NICConfig{Name: "a23456789012345", MTU: 68}},
		{"net-1.x mtu=65535 mac=02-00-00-00-00-01", sandbox.NICConfig{Name: "net-1.x", MTU: 65535, MAC: "02:00:00:00:00:01"}},
	} {
		got, err := parseAddInterface(words(t, tc.line))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseAddInterface(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	if name, err := parseRemoveInterface([]string{"eth1"}); name != "eth1" || err != nil {
		t.Errorf("parseRemoveInterface = %q, %v", name, err)
	}
}

func TestParseRoutes(t *testing.T) {
	for _, tc := range []struct {
		line string
		want sandbox.Route
	}{
		{"default via=192.168.77.1 dev=eth1", sandbox.Route{Dest: "default", Via: "192.168.77.1", Dev: "eth1"}},
		{"10.1.0.0/16 dev=eth1", sandbox.Route{Dest: "10.1.0.0/16", Dev: "eth1"}},
		{"FD00:0::/64 via=FD00::1 dev=eth1", sandbox.Route{Dest: "fd00::/64", Via: "fd00::1", Dev: "eth1"}},
	} {
		got, err := parseAddRoute(words(t, tc.line))
		if err != nil || got != tc.want {
			t.Errorf("parseAddRoute(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	for line, want := range map[string]string{"default": "default", "10.1.0.0/16": "10.1.0.0/16", "FD00::/8": "fd00::/8"} {
		if got, err := parseDelRoute([]string{line}); got != want || err != nil {
			t.Errorf("parseDelRoute(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
}
