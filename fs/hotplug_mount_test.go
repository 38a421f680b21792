package fs

import (
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestMountDevices(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	d := "sandboxes/s1/devices"
	if got := m.read(d); got != "" {
		t.Errorf("devices of a new sandbox: %q", got)
	}
	fi, err := os.Stat(m.path(d))
	if err != nil || fi.Mode().Perm() != 0o644 || !fi.Mode().IsRegular() {
		t.Errorf("stat devices: %v, %v", fi.Mode(), err)
	}
	out := m.mustSh(`cd $M/sandboxes/s1 && echo add block /img/a.raw > devices && echo "add block '/img/b c.qcow2' ro id=data" > devices && cat devices`)
	want := "disk0 kind=block path=/img/a.raw ro=false format=raw guest=/dev/vdb port=rp0\n" +
		"data kind=block path='/img/b c.qcow2' ro=true format=raw guest=/dev/vdc port=rp1\n"
	if out != want {
		t.Errorf("devices:\n%s\nwant\n%s", out, want)
	}
	// The list reads back as words: the guest path of a device by name.
	if got := m.mustSh(`grep '^data ' $M/` + d + ` | tr ' ' '\n' | sed -n 's/^guest=//p'`); got != "/dev/vdc\n" {
		t.Errorf("guest of data: %q", got)
	}
	if got, err := os.Stat(m.path(d)); err != nil || got.Size() != int64(len(want)) {
		t.Errorf("size of devices: %v, %v; want %d", got.Size(), err, len(want))
	}
	// A read handle keeps the snapshot of its open.
	f, err := os.Open(m.path(d))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m.mustSh(`echo remove disk0 > $M/` + d)
	if b, _ := io.ReadAll(f); string(b) != want {
		t.Errorf("snapshot after remove: %q", b)
	}
	if got := m.read(d); got != "data kind=block path='/img/b c.qcow2' ro=true format=raw guest=/dev/vdc port=rp1\n" {
		t.Errorf("devices after remove: %q", got)
	}
	// Several lines in one write run in order.
	if err := m.write(d, []byte("remove data\nadd block /img/c id=c\n")); err != nil {
		t.Fatal(err)
	}
	if got := m.read(d); got != "c kind=block path=/img/c ro=false format=raw guest=/dev/vdb port=rp0\n" {
		t.Errorf("devices after remove+add: %q", got)
	}
	if len(m.errorLines("sandboxes/s1/errors")) != 0 {
		t.Errorf("errors: %q", m.read("sandboxes/s1/errors"))
	}
}

func TestMountInterfacesAndRoutes(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	if got := m.mustSh(`ls $M/sandboxes/s1`); got != "config\nconsole\ncontainers\nctl\ndevices\nerrors\nevents\ninterfaces\nroutes\nstatus\nstatus.json\n" {
		t.Errorf("ls sandboxes/s1 = %q", got)
	}
	out := m.mustSh(`cd $M/sandboxes/s1 &&
		echo add eth1 addr=192.168.77.2/24 addr=fd00::2/64 mac=02:00:00:00:00:AA mtu=9000 > interfaces &&
		echo add eth2 > interfaces && cat interfaces`)
	want := "eth0 mac=02:00:00:00:00:00 mtu=1500 addr=10.0.2.15/24\n" +
		"eth1 mac=02:00:00:00:00:aa mtu=9000 addr=192.168.77.2/24 addr=fd00::2/64 tap=kt-0001\n" +
		"eth2 mac=02:00:00:00:00:02 mtu=1500 tap=kt-0002\n"
	if out != want {
		t.Errorf("interfaces:\n%s\nwant\n%s", out, want)
	}
	out = m.mustSh(`cd $M/sandboxes/s1 &&
		echo add default via=192.168.77.1 dev=eth1 > routes &&
		echo add 10.1.0.0/16 dev=eth2 > routes && cat routes`)
	if want := "default via=192.168.77.1 dev=eth1\n10.1.0.0/16 dev=eth2\n"; out != want {
		t.Errorf("routes:\n%s\nwant\n%s", out, want)
	}
	out = m.mustSh(`cd $M/sandboxes/s1 && echo del default > routes && cat routes`)
	if out != "10.1.0.0/16 dev=eth2\n" {
		t.Errorf("routes after del: %q", out)
	}
	out = m.mustSh(`cd $M/sandboxes/s1 && echo remove eth2 > interfaces && cat interfaces routes`)
	if want := want[:strings.Index(want, "eth2")]; out != want {
		t.Errorf("after remove eth2:\n%s\nwant\n%s", out, want)
	}
	if len(m.errorLines("sandboxes/s1/errors")) != 0 {
		t.Errorf("errors: %q", m.read("sandboxes/s1/errors"))
	}
}

// Each bad input fails with its errno and adds exactly one line, naming
// the file and command, to the sandbox's errors file.
func TestMountHotplugBadInputs(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	for _, tc := range []struct {
		name  string
		file  string
		line  string
		errno syscall.Errno
		msg   string
	}{
		{"bad kind", "devices", "add disk /x", syscall.EINVAL, `devices add disk /x: invalid argument: device kind "disk": want block`},
		{"relative path", "devices", "add block img/a.raw", syscall.EINVAL, `path "img/a.raw": want an absolute path`},
		{"bad device id", "devices", "add block /x id=../y", syscall.EINVAL, "bad id"},
		{"unknown verb", "devices", "attach block /x", syscall.EINVAL, "unknown command \"attach\", want one of: add, remove"},
		{"remove unknown device", "devices", "remove nosuch", syscall.ENOENT, "devices remove nosuch: not found: device nosuch"},
		{"bad CIDR", "interfaces", "add eth1 addr=10.0.0.300/24", syscall.EINVAL, "interfaces add eth1 addr=10.0.0.300/24: invalid argument: addr=10.0.0.300/24"},
		{"bad MAC", "interfaces", "add eth1 mac=02:00:00:00:00", syscall.EINVAL, "mac=02:00:00:00:00: want an Ethernet address"},
		{"mtu 10", "interfaces", "add eth1 mtu=10", syscall.EINVAL, "mtu=10: want 68 to 65535"},
		{"long ifname", "interfaces", "add a234567890123456", syscall.EINVAL, "longer than 15"},
		{"duplicate NIC", "interfaces", "add eth0", syscall.EEXIST, "interfaces add eth0: already exists: interface eth0"},
		{"remove unknown NIC", "interfaces", "remove nosuch", syscall.ENOENT, "interfaces remove nosuch: not found"},
		{"route without dev", "routes", "add default via=10.0.2.2", syscall.EINVAL, "missing dev=NAME"},
		{"route bad dest", "routes", "add 10.0.0.0 dev=eth0", syscall.EINVAL, `destination "10.0.0.0"`},
		{"route bad via", "routes", "add default via=gw dev=eth0", syscall.EINVAL, "via=gw: want an IP address"},
		{"route unknown dev", "routes", "add default dev=eth9", syscall.ENOENT, "interface eth9"},
		{"del unknown route", "routes", "del 10.9.0.0/16", syscall.ENOENT, "routes del 10.9.0.0/16: not found: route 10.9.0.0/16"},
		{"bad quoting", "routes", "add 'default", syscall.EINVAL, "routes: invalid argument: unterminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(m.errorLines("sandboxes/s1/errors"))
			if err := m.write("sandboxes/s1/"+tc.file, []byte(tc.line+"\n")); !isErrno(err, tc.errno) {
				t.Errorf("write: %v; want %v", err, tc.errno)
			}
			lines := m.errorLines("sandboxes/s1/errors")
			if len(lines) != before+1 {
				t.Fatalf("%d new errors lines; want 1: %q", len(lines)-before, lines[before:])
			}
			last := lines[len(lines)-1]
			if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) `+tc.file+`[ :]`).MatchString(last) || !strings.Contains(last, tc.msg) {
				t.Errorf("errors line %q; want time, %s and %q", last, tc.file, tc.msg)
			}
			if len(m.errorLines("errors")) != 0 {
				t.Errorf("top-level errors changed: %q", m.read("errors"))
			}
		})
	}
	for f, want := range map[string]string{"devices": "", "routes": "", "interfaces": "eth0 mac=02:00:00:00:00:00 mtu=1500 addr=10.0.2.15/24\n"} {
		if got := m.read("sandboxes/s1/" + f); got != want {
			t.Errorf("%s after bad inputs: %q; want %q", f, got, want)
		}
	}
}

// More disks than free ports: ENOSPC, and the spec's shell idiom shows why.
func TestMountDevicesNoSpace(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	for range fakePorts {
		m.mustSh(`echo add block /img/x > $M/sandboxes/s1/devices`)
	}
	if err := m.write("sandboxes/s1/devices", []byte("add block /img/x\n")); !isErrno(err, syscall.ENOSPC) {
		t.Errorf("disk %d: %v; want ENOSPC", fakePorts+1, err)
	}
	out, stderr, _ := m.bash(`cd $M/sandboxes/s1 && echo add block /img/y > devices || tail -1 errors`)
	if !strings.Contains(stderr, "No space left on device") || !strings.Contains(out, "devices add block /img/y: out of resources: all 2 root ports are taken") {
		t.Errorf("shell idiom: stdout %q stderr %q", out, stderr)
	}
	if n := len(m.errorLines("sandboxes/s1/errors")); n != 2 {
		t.Errorf("%d errors lines; want 2", n)
	}
	if n := strings.Count(m.read("sandboxes/s1/devices"), "\n"); n != fakePorts {
		t.Errorf("%d devices; want %d", n, fakePorts)
	}
}
