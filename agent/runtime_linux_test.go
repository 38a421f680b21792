package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// requireContainers skips unless this host can run the real runtime:
// root (namespaces, mounts) and a static busybox at /bin/busybox.
func requireContainers(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
}

// containerClient serves the real Service with a real Runtime on a unix
// socket and connects a Client to it. Every container left is removed at
// the end (their exec servers and namespaces go with them).
func containerClient(t *testing.T) (*Client, *Runtime) {
	t.Helper()
	requireContainers(t)
	rt := NewRuntime(RuntimeConfig{StateDir: t.TempDir()})
	path := sockPath(t, "c.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := NewListenerPort(l)
	svc := NewService(ServiceConfig{Containers: rt, KernelRelease: func() (string, error) { return "test", nil }})
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
		rt.mu.Lock()
		var cs []*container
		for id, ct := range rt.containers {
			cs = append(cs, ct)
			delete(rt.containers, id)
		}
		rt.mu.Unlock()
		for _, ct := range cs {
			rt.teardown(ct)
		}
	})
	return c, rt
}

func shSpec(script string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/"}}
}

func proc(script string) *specs.Process {
	return &specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/"}
}

// readStream collects a whole output stream in the background.
func readStream(t *testing.T, c *Client, cid, eid string, kind StdioKind) <-chan []byte {
	t.Helper()
	conn, err := c.OpenStdio(testCtx(t, 10*time.Second), cid, eid, kind)
	if err != nil {
		t.Fatalf("OpenStdio %s/%s %s: %v", cid, eid, kind, err)
	}
	ch := make(chan []byte, 1)
	go func() {
		defer conn.Close()
		b, err := io.ReadAll(conn)
		if err != nil {
			t.Errorf("read %s/%s %s: %v", cid, eid, kind, err)
		}
		ch <- b
	}()
	return ch
}

func recvBytes(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(60 * time.Second):
		t.Fatal("output stream did not end")
		return nil
	}
}

func TestContainerRun(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, 2*time.Minute)
	if err := c.CreateContainer(ctx, "c1", shSpec("echo hi; echo err >&2; sleep 1000 & exec sleep 1000"), false); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateContainer(ctx, "c1", shSpec("true"), false); !IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	out := readStream(t, c, "c1", "init", StdioStdout)
	errs := readStream(t, c, "c1", "init", StdioStderr)
	pid, err := c.StartContainer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if pid <= 1 {
		t.Errorf("init pid %d", pid)
	}
	// The pid is the one the host (root pid namespace) sees. Right after
	// the start the process may still be between fork and exec (an empty
	// cmdline): give it a moment.
	var b []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || len(b) > 0 {
			break
		}
	}
	if err != nil || !bytes.HasPrefix(b, []byte("sh\x00")) && !bytes.HasPrefix(b, []byte("sleep\x00")) {
		t.Errorf("/proc/%d/cmdline = %q, %v", pid, b, err)
	}
	if _, err := c.StartContainer(ctx, "c1"); !IsFailedPrecondition(err) {
		t.Errorf("second start: %v, want FailedPrecondition", err)
	}
	if err := c.RemoveContainer(ctx, "c1"); !IsFailedPrecondition(err) {
		t.Errorf("remove while running: %v, want FailedPrecondition", err)
	}

	// An exec sees the same pid namespace (init is pid 2 under the exec
	// server) and the container's hostname.
	xout := readStreamAfterExec(t, c, ctx, "c1", "x1", proc("hostname; ps -o pid,args; cat /proc/1/cmdline | tr '\\0' ' '"))
	if st, err := c.WaitProcess(ctx, "c1", "x1"); err != nil || st != (ExitStatus{}) {
		t.Errorf("wait x1 = %v, %v", st, err)
	}
	got := string(recvBytes(t, xout))
	if !strings.HasPrefix(got, "c1\n") || !strings.Contains(got, "sleep 1000") || !strings.Contains(got, "katafs-container-init") {
		t.Errorf("exec output:\n%s", got)
	}

	if _, err := c.ExecProcess(ctx, "c1", "x1", proc("true"), false); !IsAlreadyExists(err) {
		t.Errorf("duplicate exec id: %v", err)
	}
	if _, err := c.ExecProcess(ctx, "c1", "x2", &specs.Process{}, false); !IsInvalidArgument(err) {
		t.Errorf("empty argv: %v", err)
	}
	if _, err := c.ExecProcess(ctx, "c1", "x3", &specs.Process{Args: []string{"no-such-program"}}, false); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing program: %v", err)
	}
	if _, err := c.ExecProcess(ctx, "nope", "x4", proc("true"), false); !IsNotFound(err) {
		t.Errorf("no container: %v", err)
	}
	if _, err := c.WaitProcess(ctx, "c1", "nope"); !IsNotFound(err) {
		t.Errorf("wait no process: %v", err)
	}

	// Pause stops everything, resume continues.
	if err := c.PauseContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") T ") {
		t.Errorf("paused init stat: %s", b)
	}
	if err := c.ResumeContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}

	if err := c.SignalProcess(ctx, "c1", "init", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := c.WaitProcess(ctx, "c1", "init")
	if err != nil || st != (ExitStatus{Code: 128 + 15, Signal: "TERM"}) {
		t.Errorf("wait init = %+v, %v; want signal TERM", st, err)
	}
	if got := string(recvBytes(t, out)); got != "hi\n" {
		t.Errorf("stdout %q", got)
	}
	if got := string(recvBytes(t, errs)); got != "err\n" {
		t.Errorf("stderr %q", got)
	}
	// Waiting again gives the same status.
	if st2, err := c.WaitProcess(ctx, "c1", "init"); err != nil || st2 != st {
		t.Errorf("second wait = %v, %v", st2, err)
	}
	if _, err := c.ExecProcess(ctx, "c1", "late", proc("true"), false); !IsFailedPrecondition(err) {
		t.Errorf("exec into a stopped container: %v", err)
	}
	if err := c.RemoveContainer(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitProcess(ctx, "c1", "init"); !IsNotFound(err) {
		t.Errorf("wait after remove: %v", err)
	}
}

func readStreamAfterExec(t *testing.T, c *Client, ctx context.Context, cid, eid string, p *specs.Process) <-chan []byte {
	t.Helper()
	if _, err := c.ExecProcess(ctx, cid, eid, p, false); err != nil {
		t.Fatalf("exec %s: %v", eid, err)
	}
	return readStream(t, c, cid, eid, StdioStdout)
}

// runningContainer creates and starts a container whose init sleeps.
func runningContainer(t *testing.T, c *Client, ctx context.Context, cid string) {
	t.Helper()
	if err := c.CreateContainer(ctx, cid, shSpec("exec sleep 100000"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
}

func TestContainerExitCode(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, time.Minute)
	if err := c.CreateContainer(ctx, "e", shSpec("echo hi; echo err >&2; exit 3"), false); err != nil {
		t.Fatal(err)
	}
	out := readStream(t, c, "e", "init", StdioStdout)
	errs := readStream(t, c, "e", "init", StdioStderr)
	if _, err := c.StartContainer(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitProcess(ctx, "e", "init"); err != nil || st != (ExitStatus{Code: 3}) {
		t.Errorf("wait = %v, %v; want exit 3", st, err)
	}
	if got := string(recvBytes(t, out)); got != "hi\n" {
		t.Errorf("stdout %q", got)
	}
	if got := string(recvBytes(t, errs)); got != "err\n" {
		t.Errorf("stderr %q", got)
	}
	// A program that cannot run: a clear error, the container is over.
	if err := c.CreateContainer(ctx, "bad", &specs.Spec{Process: &specs.Process{Args: []string{"/nope"}}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartContainer(ctx, "bad"); err == nil || !strings.Contains(err.Error(), "/nope") {
		t.Errorf("start /nope: %v", err)
	}
	if err := c.RemoveContainer(ctx, "bad"); err != nil {
		t.Errorf("remove bad: %v", err)
	}
}

func TestContainerTTY(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, time.Minute)
	runningContainer(t, c, ctx, "t")
	if _, err := c.ExecProcess(ctx, "t", "tty", proc("read line; stty size; tty; echo got $line"), true); err != nil {
		t.Fatal(err)
	}
	out := readStream(t, c, "t", "tty", StdioStdout)
	if b := recvBytes(t, readStream(t, c, "t", "tty", StdioStderr)); len(b) != 0 {
		t.Errorf("stderr of a tty process: %q", b)
	}
	if err := c.ResizeTTY(ctx, "t", "tty", 33, 111); err != nil {
		t.Fatal(err)
	}
	in, err := c.OpenStdio(ctx, "t", "tty", StdioStdin)
	if err != nil {
		t.Fatal(err)
	}
	in.Write([]byte("hello\n"))
	if st, err := c.WaitProcess(ctx, "t", "tty"); err != nil || st.Code != 0 {
		t.Errorf("wait = %v, %v", st, err)
	}
	in.Close()
	got := strings.ReplaceAll(string(recvBytes(t, out)), "\r", "")
	if !strings.Contains(got, "33 111\n") || !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "got hello") {
		t.Errorf("tty output %q", got)
	}
	if err := c.ResizeTTY(ctx, "t", "init", 1, 1); !IsFailedPrecondition(err) {
		t.Errorf("resize of a non-tty: %v", err)
	}
}

func TestContainerStdin(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, 2*time.Minute)
	runningContainer(t, c, ctx, "s")
	if _, err := c.ExecProcess(ctx, "s", "in", proc("sha256sum; echo done >&2"), false); err != nil {
		t.Fatal(err)
	}
	out := readStream(t, c, "s", "in", StdioStdout)
	errs := readStream(t, c, "s", "in", StdioStderr)
	data := make([]byte, 5<<20)
	rand.New(rand.NewSource(1)).Read(data)
	in, err := c.OpenStdio(ctx, "s", "in", StdioStdin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write(data); err != nil {
		t.Fatal(err)
	}
	in.Close() // EOF
	sum := sha256.Sum256(data)
	if got := string(recvBytes(t, out)); !strings.HasPrefix(got, hex.EncodeToString(sum[:])) {
		t.Errorf("sha256sum inside = %q, want %x", got, sum)
	}
	if got := string(recvBytes(t, errs)); got != "done\n" {
		t.Errorf("stderr %q", got)
	}
	if st, err := c.WaitProcess(ctx, "s", "in"); err != nil || st.Code != 0 {
		t.Errorf("wait = %v, %v", st, err)
	}

	// CloseStdin gives EOF without cutting the output short.
	if _, err := c.ExecProcess(ctx, "s", "cl", proc("cat; sleep 0.2; echo after"), false); err != nil {
		t.Fatal(err)
	}
	out = readStream(t, c, "s", "cl", StdioStdout)
	if err := c.CloseStdin(ctx, "s", "cl"); err != nil {
		t.Fatal(err)
	}
	if got := string(recvBytes(t, out)); got != "after\n" {
		t.Errorf("after CloseStdin: %q", got)
	}
}

func TestContainerBigOutput(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, 2*time.Minute)
	runningContainer(t, c, ctx, "b")
	// 20 MB, written to a file first so that the sum inside is known.
	script := "head -c 20000000 /dev/urandom > /tmp/data; sha256sum /tmp/data >&2; cat /tmp/data"
	if _, err := c.ExecProcess(ctx, "b", "big", proc(script), false); err != nil {
		t.Fatal(err)
	}
	errs := readStream(t, c, "b", "big", StdioStderr)
	start := time.Now()
	data := recvBytes(t, readStream(t, c, "b", "big", StdioStdout))
	el := time.Since(start)
	sum := sha256.Sum256(data)
	if got := string(recvBytes(t, errs)); !strings.HasPrefix(got, hex.EncodeToString(sum[:])) || len(data) != 20000000 {
		t.Errorf("inside %q, outside %x (%d bytes)", got, sum, len(data))
	}
	t.Logf("20 MB stdout (incl. generating it) in %v", el)
}

// TestContainerReattach: output the guest holds while no host reads
// reaches the next stream, none lost, none twice.
func TestContainerReattach(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, time.Minute)
	runningContainer(t, c, ctx, "r")
	if _, err := c.ExecProcess(ctx, "r", "seq", proc("seq 1 200000"), false); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for i := 0; i < 3; i++ {
		conn, err := c.OpenStdio(ctx, "r", "seq", StdioStdout)
		if err != nil {
			t.Fatal(err)
		}
		io.CopyN(&got, conn, 100000)
		conn.Close()
	}
	conn, err := c.OpenStdio(ctx, "r", "seq", StdioStdout)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	var want bytes.Buffer
	for i := 1; i <= 200000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	// A closed stream may have taken bytes the host never read: those are
	// the host's to keep (it closed the stream). What the guest still held
	// must come in order, so the output is a prefix-preserving sequence.
	if !bytes.HasSuffix(want.Bytes(), rest) || got.Len() > want.Len() {
		t.Errorf("reattached output does not continue the sequence: got %d bytes, want %d", got.Len(), want.Len())
	}
}

func TestContainerParallelExecs(t *testing.T) {
	c, _ := containerClient(t)
	ctx := testCtx(t, 2*time.Minute)
	runningContainer(t, c, ctx, "p")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("x%d", i)
			if _, err := c.ExecProcess(ctx, "p", id, proc(fmt.Sprintf("seq 1 %d; exit %d", 1000*i, i)), false); err != nil {
				t.Errorf("exec %s: %v", id, err)
				return
			}
			out := recvBytes(t, readStream(t, c, "p", id, StdioStdout))
			var want bytes.Buffer
			for j := 1; j <= 1000*i; j++ {
				fmt.Fprintf(&want, "%d\n", j)
			}
			if !bytes.Equal(out, want.Bytes()) {
				t.Errorf("%s: %d bytes of output, want %d", id, len(out), want.Len())
			}
			if st, err := c.WaitProcess(ctx, "p", id); err != nil || st.Code != i {
				t.Errorf("%s: wait %v, %v", id, st, err)
			}
		}(i)
	}
	wg.Wait()
}
