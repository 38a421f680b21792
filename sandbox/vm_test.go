package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// guestImage returns the built guest image, skipping where it is absent
// (make test builds it first, so there it always runs).
func guestImage(t *testing.T) (kernel, initrd string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "build", "guest")
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img")
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("guest image missing (make guest): %v", err)
		}
	}
	return kernel, initrd
}

func newTestManager(t *testing.T, state string) *Manager {
	t.Helper()
	kernel, initrd := guestImage(t)
	log := logrus.New()
	log.SetOutput(os.Stderr)
	m, err := NewManager(Options{
		StateDir: state, Kernel: kernel, Initrd: initrd,
		ProbeFile: filepath.Join(os.TempDir(), "katafs-test-accel.json"),
		Log:       logrus.NewEntry(log),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// killQEMUs makes sure no VM of this state directory outlives the test.
func killQEMUs(t *testing.T, state string) {
	t.Cleanup(func() {
		exec.Command("pkill", "-KILL", "-f", "qemu-system.*"+state).Run()
	})
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestCreateInterruptedUndoesItself(t *testing.T) {
	state := t.TempDir()
	killQEMUs(t, state)
	m := newTestManager(t, state)
	if _, err := m.Accel(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once QEMU runs but long before the guest answers.
	go func() {
		for {
			b, err := os.ReadFile(m.files("x1").PidFile())
			if err == nil && len(b) > 0 {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := m.Create(ctx, Config{ID: "x1"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create = %v, want context.Canceled", err)
	}
	if out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+state).Output(); len(out) > 0 {
		t.Fatalf("QEMU left running after an interrupted create: %s", out)
	}
	if _, err := os.Stat(filepath.Join(state, "meta", "sandboxes", "x1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("metadata left behind: %v", err)
	}
	if _, err := m.Fetch(context.Background(), "x1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch after interrupted create = %v, want ErrNotFound", err)
	}
	if ids, _ := m.List(context.Background()); len(ids) != 0 {
		t.Fatalf("List = %v, want none", ids)
	}
}

func TestReleaseThenFetchFromANewManager(t *testing.T) {
	state := t.TempDir()
	killQEMUs(t, state)
	ctx := context.Background()
	m := newTestManager(t, state)
	s, err := m.Create(ctx, Config{ID: "r1", MemoryMiB: 192})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Status(ctx)
	if st.State != StateRunning || st.Agent != "ok" || !alive(st.Pid) {
		t.Fatalf("status after start = %+v", st)
	}
	if _, err := m.Create(ctx, Config{ID: "r1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate create = %v, want ErrExists", err)
	}
	m.ReleaseAll(ctx)
	if !alive(st.Pid) {
		t.Fatal("release killed the VM")
	}

	m2 := newTestManager(t, state)
	s2, err := m2.Fetch(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := s2.Status(ctx)
	if st2.State != StateRunning || st2.Pid != st.Pid || st2.Agent != "ok" || st2.MemoryMiB != 192 {
		t.Fatalf("status after fetch = %+v, want running pid %d agent ok", st2, st.Pid)
	}
	if err := s2.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Pause(ctx); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("second pause = %v, want ErrBusy naming paused", err)
	}
	if err := s2.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(st.Pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(st.Pid) {
		t.Fatal("QEMU survived delete")
	}
	if _, err := m2.Fetch(ctx, "r1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch after delete = %v", err)
	}
}
