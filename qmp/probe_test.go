package qmp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// probeFixture is everything an auto probe needs, with a fake QEMU binary
// (only --version is asked of it) and a fake boot step.
type probeFixture struct {
	opts  ProbeOptions
	boots atomic.Int32
	// reach is what the fake boot reports.
	reach bool
}

func newProbeFixture(t *testing.T) *probeFixture {
	dir := t.TempDir()
	qemu := filepath.Join(dir, "qemu")
	writeFile(t, qemu, "#!/bin/sh\necho 'QEMU emulator version 9.9.1 (fake)'\n", 0o755)
	writeFile(t, filepath.Join(dir, "vmlinuz"), "kernel", 0o644)
	writeFile(t, filepath.Join(dir, "initrd.img"), "initrd", 0o644)
	f := &probeFixture{reach: true}
	f.opts = ProbeOptions{
		Binary:    qemu,
		Kernel:    filepath.Join(dir, "vmlinuz"),
		Initrd:    filepath.Join(dir, "initrd.img"),
		Marker:    "katafs-agent: started",
		CacheFile: filepath.Join(dir, "cache", "accel.json"),
		kvmDevice: "/dev/null", // opens read-write like a usable /dev/kvm
		boot: func(ctx context.Context, o ProbeOptions) (bool, string, error) {
			f.boots.Add(1)
			if f.reach {
				return true, "KVM guest reached userspace in 1s", nil
			}
			return false, "KVM guest did not reach userspace within " + o.Timeout.String(), nil
		},
	}
	return f
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestProbeForced(t *testing.T) {
	f := newProbeFixture(t)
	ctx := testCtx(t)

	o := f.opts
	o.Requested = "tcg"
	if r, err := ProbeAccel(ctx, o); err != nil || r.Accel != "tcg" || r.Cached {
		t.Errorf("forced tcg: %+v, %v", r, err)
	}
	o.Requested = "kvm"
	if r, err := ProbeAccel(ctx, o); err != nil || r.Accel != "kvm" || !r.KVMUsable {
		t.Errorf("forced kvm: %+v, %v", r, err)
	}
	o.kvmDevice = "/nonexistent/kvm"
	if r, err := ProbeAccel(ctx, o); err == nil {
		t.Errorf("forced kvm without a device: %+v", r)
	}
	o.Requested = "hvf"
	if _, err := ProbeAccel(ctx, o); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown accel: %v", err)
	}
	if n := f.boots.Load(); n != 0 {
		t.Errorf("a forced choice booted %d probe VMs", n)
	}
	if _, err := os.Stat(f.opts.CacheFile); !os.IsNotExist(err) {
		t.Errorf("a forced choice wrote the cache: %v", err)
	}
}

func TestProbeNoKVMDevice(t *testing.T) {
	f := newProbeFixture(t)
	o := f.opts
	o.kvmDevice = "/nonexistent/kvm"
	r, err := ProbeAccel(testCtx(t), o) // Requested "" means auto
	if err != nil || r.Accel != "tcg" || r.KVMUsable || !strings.Contains(r.Reason, "/nonexistent/kvm") {
		t.Errorf("got %+v, %v", r, err)
	}
	if f.boots.Load() != 0 {
		t.Error("booted a probe VM without /dev/kvm")
	}
}

func TestProbeCache(t *testing.T) {
	f := newProbeFixture(t)
	ctx := testCtx(t)
	o := f.opts
	o.Requested = "auto"

	r, err := ProbeAccel(ctx, o)
	if err != nil || r.Accel != "kvm" || !r.KVMUsable || r.Cached || f.boots.Load() != 1 {
		t.Fatalf("miss: %+v, %v, boots %d", r, err, f.boots.Load())
	}
	r, err = ProbeAccel(ctx, o)
	if err != nil || r.Accel != "kvm" || !r.Cached || f.boots.Load() != 1 {
		t.Fatalf("hit: %+v, %v, boots %d", r, err, f.boots.Load())
	}

	// A new kernel is a miss; this time the guest hangs under KVM.
	f.reach = false
	writeFile(t, o.Kernel, "a rebuilt kernel", 0o644)
	r, err = ProbeAccel(ctx, o)
	if err != nil || r.Accel != "tcg" || r.KVMUsable || r.Cached || f.boots.Load() != 2 ||
		r.Reason != "KVM guest did not reach userspace within 12s" {
		t.Fatalf("after a kernel change: %+v, %v, boots %d", r, err, f.boots.Load())
	}
	r, err = ProbeAccel(ctx, o)
	if err != nil || r.Accel != "tcg" || !r.Cached || f.boots.Load() != 2 {
		t.Fatalf("cached tcg: %+v, %v", r, err)
	}

	// Same size, new mtime: a miss too.
	later := time.Now().Add(time.Hour)
	os.Chtimes(o.Initrd, later, later)
	if r, _ := ProbeAccel(ctx, o); r.Cached || f.boots.Load() != 3 {
		t.Errorf("after an initrd touch: %+v", r)
	}

	// Another QEMU version: a miss.
	writeFile(t, o.Binary, "#!/bin/sh\necho 'QEMU emulator version 10.0.0'\n", 0o755)
	if r, _ := ProbeAccel(ctx, o); r.Cached || f.boots.Load() != 4 {
		t.Errorf("after a qemu upgrade: %+v", r)
	}

	// A corrupt cache is a miss, not an error.
	writeFile(t, o.CacheFile, "{not json", 0o644)
	if r, err := ProbeAccel(ctx, o); err != nil || r.Cached || f.boots.Load() != 5 {
		t.Errorf("corrupt cache: %+v, %v", r, err)
	}

	// No cache file configured: always probes.
	o.CacheFile = ""
	ProbeAccel(ctx, o)
	ProbeAccel(ctx, o)
	if f.boots.Load() != 7 {
		t.Errorf("without a cache file: %d boots, want 7", f.boots.Load())
	}
}

func TestProbeBootErrorNotCached(t *testing.T) {
	f := newProbeFixture(t)
	o := f.opts
	o.boot = func(ctx context.Context, o ProbeOptions) (bool, string, error) {
		return false, "", context.Canceled
	}
	if _, err := ProbeAccel(testCtx(t), o); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(o.CacheFile); !os.IsNotExist(err) {
		t.Errorf("an undecided probe was cached: %v", err)
	}
	o.Kernel = ""
	if _, err := ProbeAccel(testCtx(t), o); !errors.Is(err, ErrInvalid) {
		t.Errorf("auto without a kernel: %v", err)
	}
}

func TestWaitForMarker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	marker := []byte("katafs-agent: started")
	go func() {
		time.Sleep(20 * time.Millisecond)
		f, _ := os.Create(path)
		defer f.Close()
		f.WriteString("[    0.1] booting\nkatafs-ag")
		time.Sleep(30 * time.Millisecond)
		f.WriteString("ent: started\n")
	}()
	ok, err := waitForMarker(testCtx(t), path, marker, nil)
	if !ok || err != nil {
		t.Fatalf("marker split across writes: %v, %v", ok, err)
	}

	exited := make(chan struct{})
	close(exited)
	writeFile(t, path, "Kernel panic - not syncing\n", 0o644)
	if ok, err := waitForMarker(testCtx(t), path, marker, exited); ok || !errors.Is(err, errExited) {
		t.Errorf("exited guest: %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ok, err := waitForMarker(ctx, path, marker, nil); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung guest: %v, %v", ok, err)
	}
}

// TestProbeReal runs the real auto probe against the project's guest, when
// it has been built.
func TestProbeReal(t *testing.T) {
	requireQEMU(t)
	kernel, initrd := guestImage(t)
	if err := kvmOpenable(defaultKVMDevice); err != nil {
		t.Logf("%v: the probe answers tcg without booting", err)
	}
	begin := time.Now()
	cache := filepath.Join(t.TempDir(), "accel.json")
	o := ProbeOptions{Kernel: kernel, Initrd: initrd, Marker: "katafs-agent: started", CacheFile: cache}
	r, err := ProbeAccel(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("real probe in %v: %+v", time.Since(begin).Round(time.Millisecond), r)
	if r.Accel != "kvm" && r.Accel != "tcg" {
		t.Fatalf("accel %q", r.Accel)
	}
	if pids := vmsNamed("kvmprobe-" + strconv.Itoa(os.Getpid()) + ","); len(pids) > 0 {
		t.Errorf("probe VMs left running: %v", pids)
	}
	if r2, err := ProbeAccel(context.Background(), o); err != nil || (r.Reason != r2.Reason) ||
		(kvmOpenable(defaultKVMDevice) == nil && !r2.Cached) {
		t.Errorf("second probe: %+v, %v", r2, err)
	}
}

// TestBootGuestTCG runs the probe's boot path on the real guest under TCG:
// once with the agent's marker (it must be seen), once with a marker that
// never comes (the VM must be killed at the deadline).
func TestBootGuestTCG(t *testing.T) {
	requireQEMU(t)
	kernel, initrd := guestImage(t)
	o := ProbeOptions{Kernel: kernel, Initrd: initrd, Marker: "katafs-agent: started", Timeout: 60 * time.Second}.withDefaults()
	begin := time.Now()
	ok, reason, err := bootGuest(context.Background(), o, "tcg")
	t.Logf("TCG boot to marker: %v %q in %v", ok, reason, time.Since(begin).Round(time.Millisecond))
	if err != nil || !ok {
		t.Fatalf("the agent's marker was not seen under TCG: %v, %q", err, reason)
	}

	o.Marker = "never printed"
	o.Timeout = 2 * time.Second
	ok, reason, err = bootGuest(context.Background(), o, "tcg")
	if err != nil || ok || reason != "TCG guest did not reach userspace within 2s" {
		t.Errorf("hung guest: %v, %q, %v", ok, reason, err)
	}
	if pids := vmsNamed("tcgprobe-" + strconv.Itoa(os.Getpid()) + ","); len(pids) > 0 {
		t.Errorf("probe VMs left running: %v", pids)
	}
}

// guestImage returns the project's guest kernel and initrd, or skips.
func guestImage(t *testing.T) (string, string) {
	t.Helper()
	kernel, _ := filepath.Abs("../build/guest/vmlinuz")
	initrd, _ := filepath.Abs("../build/guest/initrd.img")
	for _, p := range []string{kernel, initrd} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("no guest image (%v): build it to run this test", err)
		}
	}
	return kernel, initrd
}
