package agent

import (
	"net"
	"testing"
)

func TestParseInterface(t *testing.T) {
	good := Interface{Name: "eth1", MAC: "02:00:00:00:00:09", MTU: 1400, Addrs: []string{"192.168.77.2/24", "fd00::2/64"}}
	cfg, err := parseInterface(good)
	if err != nil {
		t.Fatalf("parseInterface(%+v): %v", good, err)
	}
	if cfg.mac.String() != "02:00:00:00:00:09" || cfg.mtu != 1400 || len(cfg.addrs) != 2 {
		t.Errorf("cfg = %+v", cfg)
	}
	// The host address stays: 192.168.77.2/24, not the network.
	if got := cfg.addrs[0].String(); got != "192.168.77.2/24" {
		t.Errorf("addr 0 = %s", got)
	}
	if len(cfg.addrs[0].IP) != 4 {
		t.Errorf("IPv4 address not in 4-byte form: %d bytes", len(cfg.addrs[0].IP))
	}
	bad := map[string]Interface{
		"empty name":     {MAC: good.MAC},
		"long name":      {Name: "abcdefghijklmnop", MAC: good.MAC},
		"slash in name":  {Name: "a/b", MAC: good.MAC},
		"bad MAC":        {Name: "eth1", MAC: "02:00:00:00:00"},
		"no MAC":         {Name: "eth1"},
		"EUI-64 MAC":     {Name: "eth1", MAC: "02:00:00:00:00:00:00:09"},
		"negative MTU":   {Name: "eth1", MAC: good.MAC, MTU: -1},
		"tiny MTU":       {Name: "eth1", MAC: good.MAC, MTU: 10},
		"huge MTU":       {Name: "eth1", MAC: good.MAC, MTU: 70000},
		"address no len": {Name: "eth1", MAC: good.MAC, Addrs: []string{"192.168.77.2"}},
		"address junk":   {Name: "eth1", MAC: good.MAC, Addrs: []string{"300.1.1.1/24"}},
	}
	for name, i := range bad {
		if _, err := parseInterface(i); !IsInvalidArgument(err) {
			t.Errorf("%s: parseInterface(%+v) = %v, want InvalidArgument", name, i, err)
		}
	}
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		r            Route
		dst, gw, dev string
	}{
		{Route{Dest: "default", Gateway: "192.168.77.1", Device: "eth1"}, "0.0.0.0/0", "192.168.77.1", "eth1"},
		{Route{Dest: "default", Gateway: "fd00::1", Device: "eth1"}, "::/0", "fd00::1", "eth1"},
		{Route{Dest: "10.1.0.0/16", Device: "eth1"}, "10.1.0.0/16", "<nil>", "eth1"},
		{Route{Dest: "10.1.0.0/16", Gateway: "192.168.77.1"}, "10.1.0.0/16", "192.168.77.1", ""},
		{Route{Dest: "default", Device: "eth1"}, "0.0.0.0/0", "<nil>", "eth1"},
	} {
		rc, err := parseRoute(tc.r)
		if err != nil {
			t.Errorf("parseRoute(%+v): %v", tc.r, err)
			continue
		}
		if rc.dst.String() != tc.dst || rc.gw.String() != tc.gw || rc.dev != tc.dev {
			t.Errorf("parseRoute(%+v) = %s via %s dev %q, want %s via %s dev %q", tc.r, rc.dst, rc.gw, rc.dev, tc.dst, tc.gw, tc.dev)
		}
	}
	for name, r := range map[string]Route{
		"no dest":         {Device: "eth1"},
		"junk dest":       {Dest: "nowhere", Device: "eth1"},
		"bare IP dest":    {Dest: "10.0.0.1", Device: "eth1"},
		"host bits":       {Dest: "10.1.2.3/16", Device: "eth1"},
		"junk gateway":    {Dest: "default", Gateway: "gw", Device: "eth1"},
		"mixed families":  {Dest: "10.0.0.0/8", Gateway: "fd00::1", Device: "eth1"},
		"no dev, no gw":   {Dest: "10.0.0.0/8"},
		"bad device name": {Dest: "10.0.0.0/8", Device: "a b"},
		"v6 dest, v4 gw":  {Dest: "fd00::/64", Gateway: "10.0.0.1"},
	} {
		if _, err := parseRoute(r); !IsInvalidArgument(err) {
			t.Errorf("%s: parseRoute(%+v) = %v, want InvalidArgument", name, r, err)
		}
	}
}

func TestFormatDest(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0/0":    "default",
		"::/0":         "default",
		"10.0.0.0/8":   "10.0.0.0/8",
		"fd00::/64":    "fd00::/64",
		"0.0.0.0/8":    "0.0.0.0/8",
		"192.0.2.1/32": "192.0.2.1/32",
	} {
		_, n, err := net.ParseCIDR(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatDest(n); got != want {
			t.Errorf("formatDest(%s) = %q, want %q", in, got, want)
		}
	}
	if got := formatDest(nil); got != "default" {
		t.Errorf("formatDest(nil) = %q", got)
	}
}

func TestHiddenAddr(t *testing.T) {
	for in, want := range map[string]bool{
		"fe80::1":      true,
		"ff02::1":      true,
		"fd00::1":      false,
		"169.254.1.1":  false, // IPv4 link-local is something the host set
		"192.168.77.2": false,
	} {
		if got := hiddenAddr(net.ParseIP(in)); got != want {
			t.Errorf("hiddenAddr(%s) = %v", in, got)
		}
	}
}
