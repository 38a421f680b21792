package fs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// startCat runs cat on p and returns its stdout, line by line.
func startCat(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() { s, _ := r.ReadString('\n'); ch <- s }()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no line from the stream within 10s")
		return ""
	}
}

func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(within):
		t.Fatalf("%v still running after %v", cmd.Args, within)
		return nil
	}
}

func TestMountConsoleStream(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	sb, _ := m.b.get("s1")
	console := m.path("sandboxes/s1/console")

	// No output yet: size 0, and a reader waits.
	if fi, err := os.Stat(console); err != nil || fi.Size() != 0 {
		t.Fatalf("stat console: %v", err)
	}
	cmd, out := startCat(t, "cat", console)
	appendFile(t, sb.console, "boot\n")
	if got := readLine(t, out); got != "boot\n" {
		t.Errorf("cat got %q", got)
	}
	// Blocked at the end, then more arrives.
	time.Sleep(3 * streamPoll)
	appendFile(t, sb.console, "login:\n")
	if got := readLine(t, out); got != "login:\n" {
		t.Errorf("cat got %q", got)
	}
	if fi, err := os.Stat(console); err != nil || fi.Size() != int64(len("boot\nlogin:\n")) {
		t.Errorf("stat console: size %d, %v", fi.Size(), err)
	}
	// A late reader gets everything at once; head stops early.
	if got := m.mustSh(`head -c 7 $M/sandboxes/s1/console`); got != "boot\nlo" {
		t.Errorf("head -c 7 = %q", got)
	}
	// The VM goes: what was appended last still comes, then EOF.
	appendFile(t, sb.console, "bye\n")
	sb.end()
	if got := readLine(t, out); got != "bye\n" {
		t.Errorf("cat got %q", got)
	}
	if rest, _ := io.ReadAll(out); len(rest) != 0 {
		t.Errorf("after the end: %q", rest)
	}
	if err := waitExit(t, cmd, 10*time.Second); err != nil {
		t.Errorf("cat: %v", err)
	}
	// After the end a reader gets the whole log and EOF at once, so
	// tail (which reads to EOF) returns too.
	if got := m.mustSh(`cat $M/sandboxes/s1/console; tail -c 4 $M/sandboxes/s1/console`); got != "boot\nlogin:\nbye\nbye\n" {
		t.Errorf("cat after the end = %q", got)
	}
}

func TestMountConsoleTailFollows(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	sb, _ := m.b.get("s1")
	appendFile(t, sb.console, "one\n")
	_, out := startCat(t, "tail", "-f", m.path("sandboxes/s1/console"))
	if got := readLine(t, out); got != "one\n" {
		t.Errorf("tail -f got %q", got)
	}
	appendFile(t, sb.console, "two\n")
	if got := readLine(t, out); got != "two\n" {
		t.Errorf("tail -f got %q", got)
	}
}

// Ctrl-C on a reader blocked at the end of a stream returns promptly: the
// INTERRUPT cancels the read's context.
func TestMountConsoleReadInterrupted(t *testing.T) {
	m := mountFake(t)
	m.mustSh(`echo create s1 > $M/ctl`)
	cmd, _ := startCat(t, "cat", m.path("sandboxes/s1/console"))
	time.Sleep(200 * time.Millisecond) // let cat block in read
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := waitExit(t, cmd, 5*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Errorf("cat: %v; want killed by SIGINT", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cat took %v to stop", d)
	}
	m.serving()
}

// Ctrl-C during a create cancels the backend's context; the command
// fails with EINTR and says so in errors.
func TestMountCreateInterrupted(t *testing.T) {
	m := mountFake(t)
	m.b.blockCreate("slow", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	cmd := exec.Command("sh", "-c", `echo create slow > `+m.path("ctl"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return m.b.waiting("slow") })
	cmd.Process.Signal(os.Interrupt)
	waitExit(t, cmd, 5*time.Second)
	waitFor(t, func() bool { _, ok := m.b.hookResult("slow"); return ok })
	if err, _ := m.b.hookResult("slow"); !errors.Is(err, context.Canceled) {
		t.Errorf("backend saw %v; want context.Canceled", err)
	}
	waitFor(t, func() bool { return len(m.errorLines("errors")) == 1 })
	if l := m.errorLines("errors")[0]; !strings.HasSuffix(l, "create slow: context canceled") {
		t.Errorf("errors line %q", l)
	}
	if _, err := os.Stat(m.path("sandboxes/slow")); !isErrno(err, syscall.ENOENT) {
		t.Errorf("interrupted sandbox exists: %v", err)
	}
	m.serving()
}

// A signal the caller catches but that asks nothing of it (bash's SIGCHLD
// when a background job ends) interrupts the FUSE request; the command
// must go on.
func TestMountHarmlessSignalDoesNotCancel(t *testing.T) {
	m := mountFake(t)
	m.b.blockCreate("slow", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return nil
		}
	})
	out, stderr, err := m.bash(`sleep 0.2 & echo create slow > $M/ctl && echo created; wait`)
	if err != nil || out != "created\n" {
		t.Errorf("bash with a background job: %q %q %v", out, stderr, err)
	}
	if n := len(m.errorLines("errors")); n != 0 {
		t.Errorf("errors: %q", m.read("errors"))
	}
	// The same for a reader blocked on a stream.
	m.mustSh(`echo create s1 > $M/ctl`)
	sb, _ := m.b.get("s1")
	go func() {
		time.Sleep(500 * time.Millisecond)
		appendFile(t, sb.console, "late\n")
		sb.end()
	}()
	out, stderr, err = m.bash(`sleep 0.2 & read line < $M/sandboxes/s1/console; echo "$line"; wait`)
	if err != nil || out != "late\n" {
		t.Errorf("read with a background job: %q %q %v", out, stderr, err)
	}
}

// closeCounter is a shared stream (as a process's spool) that records Close.
type closeCounter struct {
	Stream
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestStreamReleaseLeavesSharedStreamsOpen(t *testing.T) {
	shared := &closeCounter{}
	(&streamHandle{s: shared}).Release(context.Background())
	if shared.closed != 0 {
		t.Fatal("releasing one reader closed a stream other readers share")
	}
	own := &fileStream{path: "/nonexistent"}
	var _ perOpenStream = own
	(&streamHandle{s: own}).Release(context.Background())
}
