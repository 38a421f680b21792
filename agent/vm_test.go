package agent

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// guestImage is a guest built by guest/build.sh.
type guestImage struct {
	kernel, initrd, release string
}

// requireQEMU returns the path of qemu-system-x86_64, or skips the test
// where it is not installed.
func requireQEMU(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	return p
}

// requireGuestImage returns build/guest of this repository (or
// $KATAFS_GUEST_DIR), or skips the test where it has not been built.
func requireGuestImage(t *testing.T) guestImage {
	t.Helper()
	dir := os.Getenv("KATAFS_GUEST_DIR")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Skip(err)
		}
		dir = filepath.Join(root, "build", "guest")
	}
	img := guestImage{
		kernel: filepath.Join(dir, "vmlinuz"),
		initrd: filepath.Join(dir, "initrd.img"),
	}
	for _, p := range []string{img.kernel, img.initrd, filepath.Join(dir, "kernel-release")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("guest image not built (%v): run guest/build.sh build/guest bin/katafs-agent", err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "kernel-release"))
	img.release = strings.TrimSpace(string(b))
	return img
}

func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", os.ErrNotExist
		}
		d = up
	}
}

// testVM is one QEMU process running the guest.
type testVM struct {
	started time.Time
	exited  chan struct{} // closed when QEMU is gone
	err     error         // QEMU's exit, after exited
	sock    string        // the agent port's chardev socket
	console string        // the serial log
}

// startVM launches QEMU (TCG) with the agent's virtio-serial port on a
// socket in dir. QEMU is killed when the test ends, whatever happens. With
// KATAFS_VM_DEBUG set, the agent logs at debug level (katafs.debug=1) and
// the console is printed at the end. extra is appended to QEMU's
// arguments (devices).
func startVM(t *testing.T, qemu string, img guestImage, dir string, extra ...string) *testVM {
	t.Helper()
	vm := &testVM{
		exited:  make(chan struct{}),
		sock:    filepath.Join(dir, "agent.sock"),
		console: filepath.Join(dir, "console.log"),
	}
	if len(vm.sock) > 100 {
		t.Fatalf("socket path %s too long", vm.sock)
	}
	cmdline := "console=ttyS0 panic=1 quiet"
	if os.Getenv("KATAFS_VM_DEBUG") != "" {
		cmdline += " katafs.debug=1"
	}
	cmd := exec.Command(qemu,
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", img.kernel, "-initrd", img.initrd,
		"-append", cmdline,
		"-chardev", "file,id=con,path="+vm.console, "-serial", "chardev:con",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=agent,path="+vm.sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name="+PortName,
	)
	cmd.Args = append(cmd.Args, extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// If the test binary dies, so does QEMU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	vm.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	go func() {
		vm.err = cmd.Wait()
		close(vm.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-vm.exited:
		default:
			cmd.Process.Kill()
			<-vm.exited
		}
		if t.Failed() || os.Getenv("KATAFS_VM_DEBUG") != "" {
			b, _ := os.ReadFile(vm.console)
			t.Logf("qemu output:\n%s\nconsole:\n%s", out.String(), b)
		}
	})
	return vm
}

func TestVMBootReconnectDestroy(t *testing.T) {
	qemu := requireQEMU(t)
	img := requireGuestImage(t)
	vm := startVM(t, qemu, img, t.TempDir())
	ctx := testCtx(t, 5*time.Minute)
	d := UnixDialer{Path: vm.sock}

	c, err := Connect(ctx, d)
	if err != nil {
		t.Fatalf("first Connect: %v", err)
	}
	t.Logf("boot: QEMU start to first Check answer: %v", time.Since(vm.started).Round(time.Millisecond))
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.Kernel != img.release || v.Protocol != ProtocolVersion || v.Agent != AgentVersion {
		t.Fatalf("Version = %+v, want kernel %s, protocol %s, agent %s", v, img.release, ProtocolVersion, AgentVersion)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// The host comes back: a new session on the same guest port, 3 times.
	for i := 1; i <= 3; i++ {
		start := time.Now()
		c, err = Connect(ctx, d)
		if err != nil {
			t.Fatalf("reconnect %d: %v", i, err)
		}
		if err := c.Check(ctx); err != nil {
			t.Fatalf("reconnect %d: Check: %v", i, err)
		}
		t.Logf("reconnect %d: %v", i, time.Since(start).Round(time.Millisecond))
		if i < 3 {
			c.Close()
		}
	}
	c.Close()

	// A host that vanishes without a goodbye (katafs killed).
	conn, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = newClient(conn); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatalf("before the crash: Check: %v", err)
	}
	conn.Close()
	c.close(0)
	start := time.Now()
	if c, err = Connect(ctx, d); err != nil {
		t.Fatalf("Connect after a host crash: %v", err)
	}
	t.Logf("reconnect after a host crash: %v", time.Since(start).Round(time.Millisecond))
	defer c.Close()

	if err := c.CreateSandbox(ctx, "vmtest", "vmtest"); err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	if err := c.DestroySandbox(ctx); err != nil {
		t.Fatalf("DestroySandbox: %v", err)
	}
	destroyed := time.Now()
	select {
	case <-vm.exited:
		t.Logf("QEMU exited %v after DestroySandbox (%v)", time.Since(destroyed).Round(time.Millisecond), vm.err)
		if vm.err != nil {
			t.Errorf("QEMU: %v", vm.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("QEMU still runs 2 minutes after DestroySandbox")
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Error("client's Done not closed after the VM went away")
	}

	b, err := os.ReadFile(vm.console)
	if err != nil {
		t.Fatal(err)
	}
	if !hasLine(b, BootMarker) {
		t.Errorf("console lacks the line %q", BootMarker)
	}
	if !bytes.Contains(b, []byte("powering off: sandbox destroyed")) {
		t.Errorf("console lacks the power-off reason")
	}
}

func hasLine(b []byte, line string) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), "\r") == line {
			return true
		}
	}
	return false
}

// TestVMBootPVH boots the uncompressed vmlinux that guest/build.sh also
// writes (QEMU's PVH entry, no bzImage decompression).
func TestVMBootPVH(t *testing.T) {
	qemu := requireQEMU(t)
	img := requireGuestImage(t)
	img.kernel = filepath.Join(filepath.Dir(img.kernel), "vmlinux")
	if _, err := os.Stat(img.kernel); err != nil {
		t.Skipf("no vmlinux beside vmlinuz: %v", err)
	}
	vm := startVM(t, qemu, img, t.TempDir())
	ctx := testCtx(t, 5*time.Minute)
	c, err := Connect(ctx, UnixDialer{Path: vm.sock})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer c.Close()
	t.Logf("boot (PVH vmlinux): QEMU start to first Check answer: %v", time.Since(vm.started).Round(time.Millisecond))
	v, err := c.Version(ctx)
	if err != nil || v.Kernel != img.release {
		t.Fatalf("Version = %+v, %v; want kernel %s", v, err, img.release)
	}
	if err := c.DestroySandbox(ctx); err != nil {
		t.Fatalf("DestroySandbox: %v", err)
	}
	select {
	case <-vm.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("QEMU still runs 2 minutes after DestroySandbox")
	}
}
