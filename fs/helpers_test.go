package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// testLog returns a silent logger.
func testLog(t *testing.T) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// requireFUSE skips a test that needs to mount when /dev/fuse is missing.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no FUSE: %v", err)
	}
}

// mount is a tree mounted on a fake backend.
type mount struct {
	t    *testing.T
	dir  string
	b    *fakeBackend
	hook *logtest.Hook
}

func mountFake(t *testing.T) *mount {
	t.Helper()
	requireFUSE(t)
	b := newFakeBackend(t.TempDir())
	dir := t.TempDir()
	lg, hook := logtest.NewNullLogger()
	lg.SetLevel(logrus.DebugLevel)
	if os.Getenv("KATAFS_FUSE_DEBUG") != "" {
		lg.SetOutput(os.Stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Mount(ctx, dir, b, Options{Log: logrus.NewEntry(lg), Debug: os.Getenv("KATAFS_FUSE_DEBUG") != ""})
	if err != nil {
		cancel()
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		cancel() // Mount unmounts on ctx done
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("unmount of %s did not finish; detaching", dir)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return &mount{t: t, dir: dir, b: b, hook: hook}
}

func (m *mount) path(p string) string { return filepath.Join(m.dir, p) }

// sh runs a shell script with $M set to the mount point.
func (m *mount) sh(script string) (stdout, stderr string, err error) {
	return m.shell("sh", script)
}

func (m *mount) bash(script string) (stdout, stderr string, err error) {
	return m.shell("bash", script)
}

func (m *mount) shell(shell, script string) (stdout, stderr string, err error) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, "-c", script)
	// On timeout kill the whole group, so no reader is left on the mount.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(), "M="+m.dir)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustSh runs a script that must succeed and returns its stdout.
func (m *mount) mustSh(script string) string {
	m.t.Helper()
	o, e, err := m.sh(script)
	if err != nil {
		m.t.Fatalf("sh %q: %v\nstderr: %s", script, err, e)
	}
	return o
}

// write opens p like `>` does, writes data in one write(2) and closes,
// returning the first error.
func (m *mount) write(p string, data []byte) error {
	f, err := os.OpenFile(m.path(p), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

func (m *mount) read(p string) string {
	m.t.Helper()
	b, err := os.ReadFile(m.path(p))
	if err != nil {
		m.t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// errorLines returns the lines of an errors file.
func (m *mount) errorLines(p string) []string {
	m.t.Helper()
	s := strings.TrimSuffix(m.read(p), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// serving checks the mount still answers.
func (m *mount) serving() {
	m.t.Helper()
	if got := m.read("version"); !strings.HasPrefix(got, "katafs ") {
		m.t.Fatalf("version = %q: mount not serving", got)
	}
}

func isErrno(err error, want syscall.Errno) bool {
	var e syscall.Errno
	return errors.As(err, &e) && e == want
}
