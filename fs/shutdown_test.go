package fs

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/katafs/katafs/sandbox"
)

// Shutdown (Mount's ctx done) ends readers waiting on streams and
// unmounts, or detaches while a shell still sits in the tree.
func TestMountShutdown(t *testing.T) {
	requireFUSE(t)
	b := newFakeBackend(t.TempDir())
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := Mount(ctx, dir, b, Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, sandboxConfig("s1")); err != nil {
		t.Fatal(err)
	}
	cat := exec.Command("cat", filepath.Join(dir, "sandboxes/s1/console"))
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Process.Kill() })
	// Readers of a process's stdout and wait end too.
	sb, _ := b.get("s1")
	if err := sb.CreateContainer(ctx, sandbox.ContainerConfig{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	var procReaders []*exec.Cmd
	for _, f := range []string{"stdout", "wait"} {
		c := exec.Command("cat", filepath.Join(dir, "sandboxes/s1/containers/c1/procs/init", f))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill() })
		procReaders = append(procReaders, c)
	}
	// cd in the shell, not with Cmd.Dir: a chdir between fork and exec
	// into our own mount can deadlock (go-fuse fs docs).
	shell := exec.Command("sh", "-c", "cd "+filepath.Join(dir, "sandboxes")+" && sleep 1")
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shell.Process.Kill() })
	time.Sleep(200 * time.Millisecond)

	cancel()
	for _, c := range append(procReaders, cat) {
		if err := waitExit(t, c, 5*time.Second); err == nil {
			t.Errorf("%v at shutdown exited 0; want an error", c.Args)
		}
	}
	waitExit(t, shell, 5*time.Second)
	served := make(chan struct{})
	go func() { srv.Wait(); close(served) }()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("server still running 10s after shutdown")
	}
}
