package qmp

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// hasPair tells whether flag is immediately followed by value in args.
func hasPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

func valuesOf(args []string, flag string) []string {
	var v []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			v = append(v, args[i+1])
		}
	}
	return v
}

func TestArgsDefaults(t *testing.T) {
	c := Config{Name: "sb1", RunDir: "/run/k/ab"}
	a := c.Args()
	for _, p := range [][2]string{
		{"-name", "guest=sb1,process=katafs-sb1"},
		{"-machine", "q35"},
		{"-accel", "tcg"},
		{"-cpu", "max"},
		{"-m", "256M"},
		{"-smp", "1"},
		{"-display", "none"},
		{"-chardev", "file,id=console,path=/run/k/ab/console.log"},
		{"-serial", "chardev:console"},
		{"-chardev", "socket,id=qmp,path=/run/k/ab/qmp.sock,server=on,wait=off"},
		{"-mon", "chardev=qmp,mode=control"},
		{"-device", "virtio-serial-pci,id=vser0"},
		{"-chardev", "socket,id=agent,path=/run/k/ab/agent.sock,server=on,wait=off"},
		{"-device", "virtserialport,bus=vser0.0,chardev=agent,id=agentport,name=agent.channel.0"},
		{"-pidfile", "/run/k/ab/qemu.pid"},
	} {
		if !hasPair(a, p[0], p[1]) {
			t.Errorf("missing %s %s in %q", p[0], p[1], a)
		}
	}
	for _, f := range []string{"-nodefaults", "-no-user-config", "-no-reboot"} {
		if !slices.Contains(a, f) {
			t.Errorf("missing %s", f)
		}
	}
	for _, f := range []string{"-kernel", "-initrd", "-append", "-incoming", "-object", "-S", "-enable-kvm"} {
		if slices.Contains(a, f) {
			t.Errorf("unexpected %s in %q", f, a)
		}
	}
	var ports []string
	for _, d := range valuesOf(a, "-device") {
		if strings.HasPrefix(d, "pcie-root-port,") {
			ports = append(ports, d)
		}
	}
	if len(ports) != 8 {
		t.Fatalf("%d root ports, want 8: %q", len(ports), ports)
	}
	for i, d := range ports {
		if !strings.Contains(d, fmt.Sprintf("id=rp%d,", i)) || !strings.Contains(d, "bus=pcie.0") {
			t.Errorf("root port %d: %s", i, d)
		}
	}
	if c.QMPSocket() != "/run/k/ab/qmp.sock" || c.AgentSocket() != "/run/k/ab/agent.sock" ||
		c.ConsoleLog() != "/run/k/ab/console.log" || c.LogFile() != "/run/k/ab/qemu.log" {
		t.Errorf("paths: %s %s %s %s", c.QMPSocket(), c.AgentSocket(), c.ConsoleLog(), c.LogFile())
	}
}

func TestArgsKVMKernelAndSizes(t *testing.T) {
	c := Config{Name: "x", RunDir: "/r", Accel: "kvm", Kernel: "/k/vmlinuz", Initrd: "/k/initrd.img",
		KernelArgs: "katafs.debug=1", MemoryMiB: 512, CPUs: 2, HotplugPorts: 3,
		ExtraArgs: []string{"-S", "-d", "guest_errors"}}
	a := c.Args()
	for _, p := range [][2]string{
		{"-accel", "kvm"}, {"-cpu", "host"}, {"-m", "512M"}, {"-smp", "2"},
		{"-kernel", "/k/vmlinuz"}, {"-initrd", "/k/initrd.img"},
		{"-append", "console=ttyS0 panic=1 quiet katafs.debug=1"},
	} {
		if !hasPair(a, p[0], p[1]) {
			t.Errorf("missing %s %s in %q", p[0], p[1], a)
		}
	}
	if got := strings.Count(strings.Join(a, " "), "pcie-root-port"); got != 3 {
		t.Errorf("%d root ports, want 3", got)
	}
	if !slices.Equal(a[len(a)-3:], []string{"-S", "-d", "guest_errors"}) {
		t.Errorf("extra args not last: %q", a[len(a)-3:])
	}
	if got := strings.Count(strings.Join(Config{Name: "x", RunDir: "/r", HotplugPorts: -1}.Args(), " "),
		"pcie-root-port"); got != 0 {
		t.Errorf("HotplugPorts -1: %d root ports", got)
	}
	noArgs := Config{Name: "x", RunDir: "/r", Kernel: "/k"}.Args()
	if !hasPair(noArgs, "-append", BaseKernelArgs) {
		t.Errorf("base append: %q", valuesOf(noArgs, "-append"))
	}
}

func TestArgsMemoryPath(t *testing.T) {
	a := Config{Name: "x", RunDir: "/r", MemoryMiB: 128, MemoryPath: "/dev/shm/kt/mem"}.Args()
	if !hasPair(a, "-machine", "q35,memory-backend=mem0") {
		t.Errorf("machine: %q", valuesOf(a, "-machine"))
	}
	if !hasPair(a, "-object", "memory-backend-file,id=mem0,size=128M,mem-path=/dev/shm/kt/mem,share=on") {
		t.Errorf("object: %q", valuesOf(a, "-object"))
	}
	if !hasPair(a, "-m", "128M") {
		t.Errorf("-m must match the backend size: %q", valuesOf(a, "-m"))
	}
}

func TestArgsIncoming(t *testing.T) {
	a := Config{Name: "x", RunDir: "/r", Incoming: "unix:/r/mig.sock"}.Args()
	if !hasPair(a, "-incoming", "unix:/r/mig.sock") {
		t.Errorf("incoming: %q", a)
	}
}

func TestArgsEscapeCommas(t *testing.T) {
	a := Config{Name: "x", RunDir: "/r/a,b"}.Args()
	if !hasPair(a, "-chardev", "socket,id=qmp,path=/r/a,,b/qmp.sock,server=on,wait=off") {
		t.Errorf("comma not doubled: %q", valuesOf(a, "-chardev"))
	}
	if !hasPair(a, "-pidfile", "/r/a,b/qemu.pid") {
		t.Errorf("pidfile is a plain path: %q", valuesOf(a, "-pidfile"))
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Name: "sb-1", RunDir: "/r"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	long := "/" + strings.Repeat("d", 100)
	for name, c := range map[string]Config{
		"no name":          {RunDir: "/r"},
		"comma in name":    {Name: "a,b", RunDir: "/r"},
		"space in name":    {Name: "a b", RunDir: "/r"},
		"no run dir":       {Name: "a"},
		"long socket path": {Name: "a", RunDir: long},
		"bad accel":        {Name: "a", RunDir: "/r", Accel: "hvf"},
		"initrd no kernel": {Name: "a", RunDir: "/r", Initrd: "/i"},
		"negative memory":  {Name: "a", RunDir: "/r", MemoryMiB: -1},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func TestGuestName(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
		ok   bool
	}{
		{[]string{"qemu", "-name", "guest=sb1,process=katafs-sb1"}, "sb1", true},
		{[]string{"qemu", "-name", "process=p,guest=sb2"}, "sb2", true},
		{[]string{"qemu", "-name", "legacy,process=p"}, "legacy", true},
		{[]string{"qemu", "-m", "1G"}, "", false},
		{[]string{"qemu", "-name"}, "", false},
	} {
		got, ok := guestName(tc.argv)
		if got != tc.want || ok != tc.ok {
			t.Errorf("guestName(%q) = %q, %v; want %q, %v", tc.argv, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	for desc, want := range map[string]string{
		"The command foo has not been found":   ClassCommandNotFound,
		"Device 'rp9' not found":               ClassDeviceNotFound,
		"No balloon device has been activated": ClassDeviceNotActive,
		"Parameter 'id' is missing":            ClassGenericError,
	} {
		if got := classify(desc); got != want {
			t.Errorf("classify(%q) = %s, want %s", desc, got, want)
		}
	}
}
