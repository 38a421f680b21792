package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/katafs/katafs/agent"
)

// The test binary doubles as the agent: TestMain runs main when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("KATAFS_AGENT_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestListenModeServesUntilDestroy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(os.Args[0], "-listen", sock)
	cmd.Env = append(os.Environ(), "KATAFS_AGENT_RUN_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ { // the daemon takes a host after another
		c, err := agent.Connect(ctx, agent.UnixDialer{Path: sock})
		if err != nil {
			t.Fatalf("Connect %d: %v\n%s", i, err, out.String())
		}
		if _, err := c.Version(ctx); err != nil {
			t.Fatalf("Version: %v", err)
		}
		if i == 1 {
			if err := c.DestroySandbox(ctx); err != nil {
				t.Fatalf("DestroySandbox: %v", err)
			}
		}
		c.Close()
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("agent exited with %v\n%s", waitErr, out.String())
		}
	case <-ctx.Done():
		t.Fatal("agent still runs after DestroySandbox")
	}
	if !strings.Contains(out.String(), agent.BootMarker) {
		t.Errorf("output lacks %q:\n%s", agent.BootMarker, out.String())
	}
}

func TestNotPID1WithoutListen(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KATAFS_AGENT_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2; output %s", err, out)
	}
	if !strings.Contains(string(out), "-listen") {
		t.Fatalf("message does not say what to do: %s", out)
	}
}
