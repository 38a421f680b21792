package agent

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestVMContainers runs containers in a real guest: the default busybox
// root, an exec, a tty, and the stdout throughput of one stream.
func TestVMContainers(t *testing.T) {
	qemu := requireQEMU(t)
	img := requireGuestImage(t)
	vm := startVM(t, qemu, img, t.TempDir())
	ctx := testCtx(t, 5*time.Minute)
	c, err := Connect(ctx, UnixDialer{Path: vm.sock})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer func() {
		c.DestroySandbox(ctx)
		c.Close()
	}()

	if err := c.CreateContainer(ctx, "vm1", shSpec("echo hello; read x; exit 3"), false); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	out := readStream(t, c, "vm1", "init", StdioStdout)
	pid, err := c.StartContainer(ctx, "vm1")
	if err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	t.Logf("init pid %d", pid)

	// Exec while init runs: same pid namespace, the container's hostname.
	if _, err := c.ExecProcess(ctx, "vm1", "x", proc("hostname; ps -o pid,args"), false); err != nil {
		t.Fatalf("ExecProcess: %v", err)
	}
	xout := string(recvBytes(t, readStream(t, c, "vm1", "x", StdioStdout)))
	if !strings.HasPrefix(xout, "vm1\n") || !strings.Contains(xout, "read x") {
		t.Errorf("exec output:\n%s", xout)
	}

	// tty
	if _, err := c.ExecProcess(ctx, "vm1", "tty", proc("sleep 0.5; stty size"), true); err != nil {
		t.Fatalf("ExecProcess tty: %v", err)
	}
	tout := readStream(t, c, "vm1", "tty", StdioStdout)
	if err := c.ResizeTTY(ctx, "vm1", "tty", 40, 132); err != nil {
		t.Fatal(err)
	}
	if got := string(recvBytes(t, tout)); !strings.Contains(got, "40 132") {
		t.Errorf("stty size in the guest: %q", got)
	}

	// Throughput of one stdout stream.
	const n = 20000000
	if _, err := c.ExecProcess(ctx, "vm1", "zero", &specs.Process{Args: []string{"head", "-c", "20000000", "/dev/zero"}}, false); err != nil {
		t.Fatal(err)
	}
	zc, err := c.OpenStdio(ctx, "vm1", "zero", StdioStdout)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := io.Copy(io.Discard, zc)
	el := time.Since(start)
	if err != nil || got != n {
		t.Errorf("read %d bytes, %v; want %d", got, err, n)
	}
	t.Logf("stdout throughput under TCG: %d bytes in %v = %.1f MB/s", got, el.Round(time.Millisecond), float64(got)/el.Seconds()/1e6)

	in, err := c.OpenStdio(ctx, "vm1", "init", StdioStdin)
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	in.Close()
	if st, err := c.WaitProcess(ctx, "vm1", "init"); err != nil || st != (ExitStatus{Code: 3}) {
		t.Errorf("wait init = %v, %v; want exit 3", st, err)
	}
	if got := string(recvBytes(t, out)); got != "hello\n" {
		t.Errorf("init stdout %q", got)
	}
	if err := c.RemoveContainer(ctx, "vm1"); err != nil {
		t.Errorf("RemoveContainer: %v", err)
	}
}
