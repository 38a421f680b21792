package agent

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeSys is a fake sysfs and /dev for the block device waiter.
type fakeSys struct {
	sys, dev string
}

func newFakeSys(t *testing.T) fakeSys {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod of block device nodes)")
	}
	d := t.TempDir()
	fs := fakeSys{sys: filepath.Join(d, "sys"), dev: filepath.Join(d, "dev")}
	for _, p := range []string{filepath.Join(fs.sys, "block"), fs.dev} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

// add makes a block device name with serial; node false leaves its /dev
// node out (devtmpfs not there yet).
func (fs fakeSys) add(t *testing.T, name, serial string, node bool) {
	t.Helper()
	dir := filepath.Join(fs.sys, "block", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if serial != "" {
		if err := os.WriteFile(filepath.Join(dir, "serial"), []byte(serial+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if node {
		if err := unix.Mknod(filepath.Join(fs.dev, name), unix.S_IFBLK|0o600, int(unix.Mkdev(254, 0))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBlockBySerial(t *testing.T) {
	fs := newFakeSys(t)
	fs.add(t, "loop0", "", true)
	fs.add(t, "vda", "disk0", true)
	fs.add(t, "vdb", "disk1", false)
	fs.add(t, "vdc", "abcdefghijklmnopqrst", true) // 20 bytes: the kernel's limit
	if err := os.WriteFile(filepath.Join(fs.dev, "vdd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fs.add(t, "vdd", "regular", false)
	for serial, want := range map[string]string{
		"disk0":                      filepath.Join(fs.dev, "vda"),
		"disk1":                      "", // no node yet
		"disk":                       "",
		"regular":                    "", // not a block device node
		"abcdefghijklmnopqrst":       filepath.Join(fs.dev, "vdc"),
		"abcdefghijklmnopqrstuvwxyz": filepath.Join(fs.dev, "vdc"), // cut as virtio-blk does
	} {
		if got := findBlockBySerial(fs.sys, fs.dev, serial); got != want {
			t.Errorf("findBlockBySerial(%q) = %q, want %q", serial, got, want)
		}
	}
}

// manualEvents is an EventSource the test fires by hand.
type manualEvents struct {
	ch         chan struct{}
	subscribed chan struct{}
	stopped    chan struct{}
}

func newManualEvents() *manualEvents {
	return &manualEvents{ch: make(chan struct{}, 1), subscribed: make(chan struct{}, 10), stopped: make(chan struct{}, 10)}
}

func (m *manualEvents) source() (<-chan struct{}, func(), error) {
	m.subscribed <- struct{}{}
	return m.ch, func() { m.stopped <- struct{}{} }, nil
}

func TestWaitBlockDeviceOnEvent(t *testing.T) {
	fs := newFakeSys(t)
	ev := newManualEvents()
	ready := make(chan struct{})
	// An hour of poll interval: only the event can wake the waiter.
	d := NewDevices(DevicesConfig{SysDir: fs.sys, DevDir: fs.dev, Events: ev.source, Poll: time.Hour,
		Ready: func(ctx context.Context) error { <-ready; return nil }})
	ctx := testCtx(t, 30*time.Second)
	type result struct {
		p   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := d.WaitBlockDevice(ctx, "disk1")
		done <- result{p, err}
	}()
	<-ev.subscribed
	// Modules still loading: the waiter must not answer yet, even if the
	// device is there.
	fs.add(t, "vdb", "disk0", true)
	select {
	case r := <-done:
		t.Fatalf("answered before the modules were loaded: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(ready)
	select {
	case r := <-done:
		t.Fatalf("answered before the device was there: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	fs.add(t, "vdc", "disk1", true)
	ev.ch <- struct{}{}
	select {
	case r := <-done:
		if r.err != nil || r.p != filepath.Join(fs.dev, "vdc") {
			t.Fatalf("WaitBlockDevice = %q, %v", r.p, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event did not wake the waiter")
	}
	select {
	case <-ev.stopped:
	case <-time.After(time.Second):
		t.Error("event subscription not stopped")
	}
}

func TestWaitBlockDevicePollsWithoutEvents(t *testing.T) {
	fs := newFakeSys(t)
	d := NewDevices(DevicesConfig{SysDir: fs.sys, DevDir: fs.dev, Poll: 5 * time.Millisecond,
		Events: func() (<-chan struct{}, func(), error) { return nil, nil, errors.New("no uevents here") }})
	go func() {
		time.Sleep(30 * time.Millisecond)
		fs.add(t, "vda", "late", true)
	}()
	p, err := d.WaitBlockDevice(testCtx(t, 30*time.Second), "late")
	if err != nil || p != filepath.Join(fs.dev, "vda") {
		t.Fatalf("WaitBlockDevice = %q, %v", p, err)
	}
}

func TestWaitBlockDeviceErrors(t *testing.T) {
	fs := newFakeSys(t)
	ev := newManualEvents()
	d := NewDevices(DevicesConfig{SysDir: fs.sys, DevDir: fs.dev, Events: ev.source, Poll: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.WaitBlockDevice(ctx, "never"); !IsNotFound(err) {
		t.Errorf("WaitBlockDevice of a missing device = %v, want NotFound", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v past a 50ms deadline", el)
	}
	for _, s := range []string{"", "a/b"} {
		if _, err := d.WaitBlockDevice(testCtx(t, time.Second), s); !IsInvalidArgument(err) {
			t.Errorf("WaitBlockDevice(%q) = %v, want InvalidArgument", s, err)
		}
	}
}

// TestWaitBlockDeviceThroughClient runs the request over the wire, with
// a deadline the guest side keeps.
func TestWaitBlockDeviceThroughClient(t *testing.T) {
	fs := newFakeSys(t)
	fs.add(t, "vda", "disk0", true)
	d := NewDevices(DevicesConfig{SysDir: fs.sys, DevDir: fs.dev, Events: newManualEvents().source, Poll: time.Millisecond})
	c := deviceClient(t, ServiceConfig{Devices: d})
	if p, err := c.WaitBlockDevice(testCtx(t, 10*time.Second), "disk0"); err != nil || p != filepath.Join(fs.dev, "vda") {
		t.Errorf("WaitBlockDevice = %q, %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.WaitBlockDevice(ctx, "disk9"); err == nil {
		t.Error("WaitBlockDevice of a missing device succeeded")
	}
}

// deviceClient serves a Service with cfg on a unix socket and connects.
func deviceClient(t *testing.T, cfg ServiceConfig) *Client {
	t.Helper()
	path := sockPath(t, "d.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := NewListenerPort(l)
	if cfg.KernelRelease == nil {
		cfg.KernelRelease = func() (string, error) { return "test", nil }
	}
	svc := NewService(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ServePort(ctx, p, svc); close(done) }()
	c, err := Connect(testCtx(t, 30*time.Second), UnixDialer{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.close(0)
		cancel()
		<-done
		p.Close()
	})
	return c
}

func TestUeventSource(t *testing.T) {
	ch, stop, err := UeventSource()
	if err != nil {
		t.Skipf("no uevent socket here: %v", err)
	}
	// Stop must end the reader even though no event came.
	stop()
	select {
	case <-ch:
	default:
	}
}

func TestDevicesUnimplemented(t *testing.T) {
	c := deviceClient(t, ServiceConfig{})
	ctx := testCtx(t, 10*time.Second)
	if _, err := c.WaitBlockDevice(ctx, "x"); err == nil {
		t.Error("WaitBlockDevice without Devices succeeded")
	}
	if _, err := c.ListInterfaces(ctx); err == nil {
		t.Error("ListInterfaces without Network succeeded")
	}
}
