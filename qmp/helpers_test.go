package qmp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testPrefix marks every QEMU this test binary starts, so TestMain can find
// (and kill) any that a test left behind.
var testPrefix = "kft" + strconv.Itoa(os.Getpid()) + "-"

var vmCounter atomic.Int32

func TestMain(m *testing.M) {
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

// leftoverVMs lists live (non-zombie) QEMUs started by this test binary.
func leftoverVMs() []int { return vmsNamed(testPrefix) }

// vmsNamed lists live (non-zombie) QEMUs whose guest name starts with prefix.
func vmsNamed(prefix string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "guest="+prefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// requireQEMU skips the test only when the QEMU binary is missing.
func requireQEMU(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath(DefaultBinary)
	if err != nil {
		t.Skipf("%s not installed", DefaultBinary)
	}
	return p
}

// shortDir is a temporary directory with a short path, so unix socket
// paths stay far below 108 bytes (t.TempDir paths carry the test name).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func testVMName() string {
	return testPrefix + strconv.Itoa(int(vmCounter.Add(1)))
}

// testConfig is a VM without a kernel, held in prelaunch by -S: enough for
// QMP, cheap under TCG.
func testConfig(t *testing.T) Config {
	return Config{
		Name:      testVMName(),
		RunDir:    shortDir(t),
		Accel:     "tcg",
		MemoryMiB: 64,
		ExtraArgs: []string{"-S"},
	}
}

// startVM starts cfg and makes sure it is killed when the test ends,
// whether it passed or not.
func startVM(t *testing.T, cfg Config) *Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	p, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("qemu pid %d: start to QMP ready in %v", p.Pid, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := p.Kill(); err != nil && !strings.Contains(err.Error(), ErrReleased.Error()) {
			t.Errorf("cleanup kill: %v", err)
		}
	})
	return p
}

func dialVM(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Dial(ctx, cfg.QMPSocket())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed fails the test unless ch closes within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s not closed after %v", what, d)
	}
}
