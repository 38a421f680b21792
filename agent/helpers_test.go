package agent

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// testHost is what the in-process tests need from the guest side: the real
// Service and ServePort, on some Port, plus what the service did.
type testHost struct {
	svc      *Service
	done     chan struct{} // closed when ServePort returned
	err      error         // ServePort's result, after done
	mu       sync.Mutex
	hostname string
}

func (h *testHost) setHostname(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hostname = name
	return nil
}

func (h *testHost) gotHostname() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hostname
}

// serveTest runs the real guest service on p until the test ends.
func serveTest(t *testing.T, p Port) *testHost {
	t.Helper()
	h := &testHost{done: make(chan struct{})}
	h.svc = NewService(ServiceConfig{
		SetHostname:   h.setHostname,
		KernelRelease: func() (string, error) { return "6.1.0-test", nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		h.err = ServePort(ctx, p, h.svc)
		close(h.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("ServePort did not return after cancel")
		}
		p.Close()
	})
	return h
}

// unixServer serves the guest service on a unix socket in a temp dir.
func unixServer(t *testing.T) (*testHost, UnixDialer) {
	t.Helper()
	path := sockPath(t, "a.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return serveTest(t, NewListenerPort(l)), UnixDialer{Path: path}
}

// sockPath is a socket path in t.TempDir, checked against the unix socket
// path limit (108 bytes with the NUL).
func sockPath(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if len(p) > 100 {
		t.Fatalf("socket path %s too long for a unix socket", p)
	}
	return p
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestMain(m *testing.M) {
	// Container tests re-execute this binary as the exec server.
	if IsContainerInit() {
		RunContainerInit()
	}
	if os.Getenv("KATAFS_VM_DEBUG") != "" {
		logrus.SetLevel(logrus.DebugLevel)
	}
	os.Exit(m.Run())
}
