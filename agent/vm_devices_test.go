package agent

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestVMDevices gives a real guest a read-only disk and a NIC (both
// cold-plugged: hot-plugging is the host side's, tested in hotplug/):
// the disk is found by its serial and becomes a container's root, the
// NIC is configured, routed and removed. The NIC's backend is user-mode
// networking with restrict=on, and nothing here sends a packet anyway.
func TestVMDevices(t *testing.T) {
	qemu := requireQEMU(t)
	img := requireGuestImage(t)
	root := makeRootImage(t)
	const mac = "02:00:00:00:00:09"
	vm := startVM(t, qemu, img, t.TempDir(),
		"-drive", "file="+root+",if=none,id=d1,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=d1,serial=disk1",
		"-netdev", "user,id=n1,restrict=on",
		"-device", "virtio-net-pci,netdev=n1,romfile=,mac="+mac,
	)
	ctx := testCtx(t, 5*time.Minute)
	c, err := Connect(ctx, UnixDialer{Path: vm.sock})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer func() {
		c.DestroySandbox(ctx)
		c.Close()
	}()

	// Right after boot: virtio_blk may still be loading, and the wait
	// covers it.
	start := time.Now()
	dev, err := c.WaitBlockDevice(ctx, "disk1")
	if err != nil || dev != "/dev/vda" {
		t.Fatalf("WaitBlockDevice(disk1) = %q, %v; want /dev/vda", dev, err)
	}
	t.Logf("WaitBlockDevice after boot: %v", time.Since(start).Round(time.Millisecond))

	spec := shSpec("cat /hello.txt; echo w > /w && cat /w; grep -c busybox /proc/mounts || true")
	spec.Root = &specs.Root{Path: dev}
	if err := c.CreateContainer(ctx, "img", spec, false); err != nil {
		t.Fatalf("CreateContainer on %s: %v", dev, err)
	}
	out := readStream(t, c, "img", "init", StdioStdout)
	if _, err := c.StartContainer(ctx, "img"); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if st, err := c.WaitProcess(ctx, "img", "init"); err != nil || st.Code != 0 {
		t.Errorf("WaitProcess = %v, %v", st, err)
	}
	if got, want := string(recvBytes(t, out)), imageHello+"w\n0\n"; got != want {
		t.Errorf("container output %q, want %q", got, want)
	}
	if err := c.RemoveContainer(ctx, "img"); err != nil {
		t.Errorf("RemoveContainer: %v", err)
	}
	// The same device again: the first container let go of it.
	spec = shSpec("cat /hello.txt; ls /w 2>/dev/null; true")
	spec.Root = &specs.Root{Path: dev}
	if err := c.CreateContainer(ctx, "img2", spec, false); err != nil {
		t.Fatalf("second CreateContainer on %s: %v", dev, err)
	}
	out = readStream(t, c, "img2", "init", StdioStdout)
	if _, err := c.StartContainer(ctx, "img2"); err != nil {
		t.Fatal(err)
	}
	c.WaitProcess(ctx, "img2", "init")
	if got := string(recvBytes(t, out)); got != imageHello {
		t.Errorf("second container output %q: the first one's writes must be gone", got)
	}
	c.RemoveContainer(ctx, "img2")

	// The NIC.
	want := Interface{Name: "eth1", MAC: mac, MTU: 1400, Addrs: []string{"192.168.77.2/24"}}
	if err := c.AddInterface(ctx, want); err != nil {
		t.Fatalf("AddInterface: %v", err)
	}
	ifs, err := c.ListInterfaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := named(ifs, "eth1"); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("ListInterfaces = %+v, want %+v among them", ifs, want)
	}
	def := Route{Dest: "default", Gateway: "192.168.77.1", Device: "eth1"}
	if err := c.AddRoute(ctx, def); err != nil {
		t.Fatalf("AddRoute: %v", err)
	}
	rs, err := c.ListRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRoutes(rs, []Route{def, {Dest: "192.168.77.0/24", Device: "eth1"}}) {
		t.Errorf("ListRoutes = %+v", rs)
	}
	if err := c.DelRoute(ctx, "default"); err != nil {
		t.Errorf("DelRoute: %v", err)
	}
	if err := c.RemoveInterface(ctx, "eth1"); err != nil {
		t.Errorf("RemoveInterface: %v", err)
	}
	ifs, _ = c.ListInterfaces(ctx)
	if got, _ := named(ifs, "eth1"); len(got.Addrs) != 0 {
		t.Errorf("eth1 after RemoveInterface: %+v", got)
	}
	if rs, _ := c.ListRoutes(ctx); len(rs) != 0 {
		t.Errorf("routes after RemoveInterface: %+v", rs)
	}
	if _, err := c.WaitBlockDevice(testCtx(t, 2*time.Second), "nodisk"); err == nil || !strings.Contains(err.Error(), "nodisk") {
		t.Errorf("WaitBlockDevice of a missing disk = %v", err)
	}
}
