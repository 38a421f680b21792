package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestVsockDialerWithoutVhostVsock(t *testing.T) {
	check := func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		start := time.Now()
		_, err := Connect(ctx, VsockDialer{CID: 3, Port: 1024})
		if !errors.Is(err, ErrVsockUnavailable) {
			t.Fatalf("Connect over vsock: %v, want ErrVsockUnavailable", err)
		}
		const msg = "vsock: /dev/vhost-vsock missing on this host; use the virtio-serial transport"
		if err.Error() != msg {
			t.Fatalf("error %q, want %q", err, msg)
		}
		if el := time.Since(start); el > time.Second {
			t.Fatalf("took %v: Connect retried a permanent error", el)
		}
	}
	t.Run("this host", func(t *testing.T) {
		if _, err := os.Stat("/dev/vhost-vsock"); err == nil {
			t.Skip("this host has /dev/vhost-vsock")
		}
		check(t)
	})
	t.Run("missing path", func(t *testing.T) {
		old := vhostVsockPath
		vhostVsockPath = filepath.Join(t.TempDir(), "vhost-vsock")
		t.Cleanup(func() { vhostVsockPath = old })
		check(t)
	})
}
