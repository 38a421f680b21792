package hotplug

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"

	"github.com/katafs/katafs/qmp"
)

// testPrefix marks every QEMU this test binary starts, so TestMain can find
// (and kill) any that a test left behind.
var testPrefix = "kfh" + strconv.Itoa(os.Getpid()) + "-"

var vmCounter atomic.Int32

func TestMain(m *testing.M) {
	if os.Getenv("KATAFS_TEST_DEBUG") == "" {
		logrus.SetLevel(logrus.WarnLevel)
	}
	code := m.Run()
	if pids := leftoverVMs(); len(pids) > 0 {
		for _, pid := range pids {
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
		fmt.Fprintf(os.Stderr, "FAIL: tests left QEMU processes behind: %v (killed)\n", pids)
		code = 1
	}
	os.Exit(code)
}

func leftoverVMs() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "guest="+testPrefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// qmpMonitor adapts *qmp.Monitor to Monitor, as sandbox does.
type qmpMonitor struct{ m *qmp.Monitor }

func (a qmpMonitor) Execute(ctx context.Context, cmd string, args, out any) error {
	return a.m.Execute(ctx, cmd, args, out)
}

func (a qmpMonitor) ExecuteWithFile(ctx context.Context, cmd string, args, out any, f *os.File) error {
	return a.m.ExecuteWithFile(ctx, cmd, args, f, out)
}

func (a qmpMonitor) Events() (<-chan Event, func()) {
	in, cancel := a.m.Subscribe()
	out := make(chan Event, 64)
	stop := make(chan struct{})
	go func() {
		defer close(out)
		for e := range in {
			select {
			case out <- Event{Name: e.Name, Data: e.Data}:
			case <-stop:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(stop); cancel() }) }
}

func requireQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(qmp.DefaultBinary); err != nil {
		t.Skipf("%s not installed", qmp.DefaultBinary)
	}
}

// guestImage is build/guest (or $KATAFS_GUEST_DIR): a guest is needed,
// since a PCIe device is only unplugged when the guest lets go of it.
func guestImage(t *testing.T) (kernel, initrd string) {
	t.Helper()
	dir := os.Getenv("KATAFS_GUEST_DIR")
	if dir == "" {
		dir = filepath.Join("..", "build", "guest")
	}
	dir, _ = filepath.Abs(dir)
	kernel, initrd = filepath.Join(dir, "vmlinux"), filepath.Join(dir, "initrd.img")
	for _, p := range []string{kernel, initrd} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("guest image not built (%v): run make guest", err)
		}
	}
	return kernel, initrd
}

// bootGuest starts a TCG VM with n hotplug ports running our guest, waits
// until the guest agent opened its port (the kernel, pciehp included, is
// up by then) and returns its monitor. QEMU is killed when the test ends.
func bootGuest(t *testing.T, n int) (Monitor, *Ports) {
	t.Helper()
	requireQEMU(t)
	kernel, initrd := guestImage(t)
	dir, err := os.MkdirTemp("", "kh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := qmp.Config{
		Name:         testPrefix + strconv.Itoa(int(vmCounter.Add(1))),
		RunDir:       dir,
		Accel:        "tcg",
		Kernel:       kernel,
		Initrd:       initrd,
		HotplugPorts: n,
		ExtraArgs:    []string{"-S"}, // held until we listen for the agent's port
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := qmp.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Kill(); err != nil {
			t.Errorf("kill qemu: %v", err)
		}
	})
	m, err := qmp.Dial(ctx, cfg.QMPSocket())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	ev, stop := m.Subscribe()
	defer stop()
	begin := time.Now()
	if err := m.Cont(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qmp.WaitPortOpen(ctx, ev, qmp.AgentPortID); err != nil {
		t.Fatalf("guest did not come up: %v; console: %s", err, qmp.LogTail(cfg.ConsoleLog(), 10))
	}
	t.Logf("guest up in %v", time.Since(begin).Round(time.Millisecond))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = qmp.RootPortID(i)
	}
	return qmpMonitor{m}, NewPorts(ids)
}

// peripherals lists QEMU's user-created devices (qom /machine/peripheral).
func peripherals(t *testing.T, m Monitor) []string {
	t.Helper()
	var props []struct{ Name, Type string }
	if err := m.Execute(ctxT(t), "qom-list", map[string]any{"path": "/machine/peripheral"}, &props); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range props {
		if strings.HasPrefix(p.Type, "child<") {
			ids = append(ids, p.Name)
		}
	}
	return ids
}

// nodeNames lists QEMU's named block nodes.
func nodeNames(t *testing.T, m Monitor) []string {
	t.Helper()
	var nodes []struct {
		NodeName string `json:"node-name"`
	}
	if err := m.Execute(ctxT(t), "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.NodeName)
	}
	return names
}

// hmp runs a human monitor command (for "info network": QMP has no netdev query).
func hmp(t *testing.T, m Monitor, line string) string {
	t.Helper()
	var out string
	if err := m.Execute(ctxT(t), "human-monitor-command", map[string]any{"command-line": line}, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func image(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("truncate", "-s", "8M", p).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v: %s", err, out)
	}
	return p
}

func longCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestQEMUBlock(t *testing.T) {
	m, ports := bootGuest(t, 3)
	dir := t.TempDir()
	ctx := ctxT(t)

	d1 := &Block{ID: "d1", Path: image(t, dir, "1.img")}
	d2 := &Block{ID: "d2", Path: image(t, dir, "2.img"), ReadOnly: true}
	for _, b := range []*Block{d1, d2} {
		if err := AddBlock(ctx, m, ports, b); err != nil {
			t.Fatalf("AddBlock %s: %v", b.ID, err)
		}
	}
	if d1.Port != "rp0" || d2.Port != "rp1" || d1.Format != FormatRaw {
		t.Errorf("ports %s %s, format %s", d1.Port, d2.Port, d1.Format)
	}
	devs := peripherals(t, m)
	if !slices.Contains(devs, "d1") || !slices.Contains(devs, "d2") {
		t.Fatalf("peripherals %v", devs)
	}

	// A device_add that fails (the id of an existing device) leaves no node.
	err := AddBlock(ctx, m, ports, &Block{ID: "vser0", Path: image(t, dir, "x.img")})
	if !errors.Is(err, ErrExists) {
		t.Errorf("AddBlock with a taken device id: %v, want ErrExists", err)
	}
	if slices.Contains(nodeNames(t, m), "drv-vser0") || ports.InUse() != 2 {
		t.Errorf("rollback left node(s) %v, ports in use %d", nodeNames(t, m), ports.InUse())
	}
	// A taken node name fails at blockdev-add.
	if err := AddBlock(ctx, m, ports, &Block{ID: "d1", Path: d1.Path}); !errors.Is(err, ErrExists) {
		t.Errorf("AddBlock d1 again: %v, want ErrExists", err)
	}

	begin := time.Now()
	if err := RemoveBlock(longCtx(t), m, ports, d1); err != nil {
		t.Fatalf("RemoveBlock d1: %v", err)
	}
	t.Logf("d1 removed in %v", time.Since(begin).Round(time.Millisecond))
	if slices.Contains(peripherals(t, m), "d1") || slices.Contains(nodeNames(t, m), "drv-d1") {
		t.Errorf("d1 still there: %v %v", peripherals(t, m), nodeNames(t, m))
	}

	d3 := &Block{ID: "d3", Path: image(t, dir, "3.img")}
	d4 := &Block{ID: "d4", Path: image(t, dir, "4.img")}
	if err := AddBlock(ctx, m, ports, d3); err != nil || d3.Port != "rp0" {
		t.Fatalf("AddBlock d3: %v (port %s, want the freed rp0)", err, d3.Port)
	}
	if err := AddBlock(ctx, m, ports, d4); err != nil || d4.Port != "rp2" {
		t.Fatalf("AddBlock d4: %v (port %s)", err, d4.Port)
	}
	d5 := &Block{ID: "d5", Path: image(t, dir, "5.img")}
	if err := AddBlock(ctx, m, ports, d5); !errors.Is(err, ErrNoSpace) {
		t.Errorf("AddBlock beyond the ports: %v, want ErrNoSpace", err)
	}
	if slices.Contains(nodeNames(t, m), "drv-d5") {
		t.Error("ErrNoSpace left a node behind")
	}

	if err := AddBlock(ctx, m, ports, &Block{ID: "d6", Path: filepath.Join(dir, "missing.img")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("missing image: %v, want ErrInvalid", err)
	}
	if err := AddBlock(ctx, m, ports, &Block{ID: "d6", Path: dir}); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v, want ErrInvalid naming the directory", err)
	}
}

func TestQEMUNIC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for netns and taps") // never the case on the project's machines
	}
	m, ports := bootGuest(t, 2)
	ns := testPrefix + "ns"
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	nsPath := "/run/netns/" + ns
	ctx := ctxT(t)

	tapIn := func(name string) netlink.Link {
		t.Helper()
		h, err := handleAt(nsPath)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByName(name)
		if err != nil {
			return nil
		}
		return l
	}

	n := &NIC{Name: "eth1", NetNS: nsPath, MTU: 1400, Sandbox: "sb"}
	if err := AddNIC(ctx, m, ports, n); err != nil {
		t.Fatalf("AddNIC: %v", err)
	}
	l := tapIn(n.Tap)
	if l == nil {
		t.Fatalf("tap %s not in netns %s", n.Tap, ns)
	}
	if l.Type() != "tuntap" || l.Attrs().MTU != 1400 || l.Attrs().Flags&1 == 0 /* up */ {
		t.Errorf("tap %s: type %s mtu %d flags %v", n.Tap, l.Type(), l.Attrs().MTU, l.Attrs().Flags)
	}
	if h, _ := netlink.NewHandle(); h != nil {
		if _, err := h.LinkByName(n.Tap); err == nil {
			t.Errorf("tap %s also in the daemon's namespace", n.Tap)
		}
		h.Close()
	}
	if !slices.Contains(peripherals(t, m), "nic-eth1") || !strings.Contains(hmp(t, m, "info network"), "net-eth1") {
		t.Fatalf("nic not in QEMU: %v / %s", peripherals(t, m), hmp(t, m, "info network"))
	}

	// A device_add that fails undoes the netdev, the fd and the tap.
	bad := &NIC{Name: "eth2", NetNS: nsPath}
	err := AddNIC(ctx, failing{m, "device_add"}, ports, bad)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("AddNIC with a failing device_add: %v", err)
	}
	if info := hmp(t, m, "info network"); strings.Contains(info, "net-eth2") {
		t.Errorf("netdev left behind: %s", info)
	}
	if tapIn(TapName("", nsPath, "eth2")) != nil || ports.InUse() != 1 {
		t.Errorf("tap or port left behind (ports in use %d)", ports.InUse())
	}

	begin := time.Now()
	if err := RemoveNIC(longCtx(t), m, ports, n); err != nil {
		t.Fatalf("RemoveNIC: %v", err)
	}
	t.Logf("nic removed in %v", time.Since(begin).Round(time.Millisecond))
	if tapIn(n.Tap) != nil {
		t.Errorf("tap %s still in netns after remove", n.Tap)
	}
	if slices.Contains(peripherals(t, m), "nic-eth1") || strings.Contains(hmp(t, m, "info network"), "net-eth1") {
		t.Errorf("nic still in QEMU")
	}
	if ports.InUse() != 0 {
		t.Error("port not freed")
	}
	if err := DeleteTap(nsPath, n.Tap); err != nil {
		t.Errorf("DeleteTap of a gone tap: %v", err)
	}
}

// failing passes every command through to a real monitor except cmd, which
// fails without reaching QEMU.
type failing struct {
	Monitor
	cmd string
}

func (f failing) Execute(ctx context.Context, cmd string, args, out any) error {
	if cmd == f.cmd {
		return errors.New("qmp " + cmd + ": GenericError: injected failure")
	}
	return f.Monitor.Execute(ctx, cmd, args, out)
}

// A remove right after an add, while the guest may still be busy bringing
// the slot up, still completes.
func TestQEMUAddThenRemoveAtOnce(t *testing.T) {
	m, ports := bootGuest(t, 1)
	b := &Block{ID: "quick", Path: image(t, t.TempDir(), "q.img")}
	for i := range 3 {
		if err := AddBlock(ctxT(t), m, ports, b); err != nil {
			t.Fatalf("round %d: AddBlock: %v", i, err)
		}
		if err := RemoveBlock(longCtx(t), m, ports, b); err != nil {
			t.Fatalf("round %d: RemoveBlock: %v", i, err)
		}
	}
	if slices.Contains(peripherals(t, m), "quick") || ports.InUse() != 0 {
		t.Error("device or port left")
	}
}
