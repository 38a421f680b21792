package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/mdlayher/vsock"
)

// Dialer opens the byte stream to one guest's agent.
type Dialer interface {
	Dial(ctx context.Context) (net.Conn, error)
}

// UnixDialer dials the unix socket of QEMU's virtio-serial chardev
// (-chardev socket,path=Path,server=on,wait=off).
type UnixDialer struct {
	Path string
}

// Dial implements Dialer.
func (d UnixDialer) Dial(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "unix", d.Path)
	if err != nil {
		return nil, fmt.Errorf("agent: dial %s: %w", d.Path, err)
	}
	return c, nil
}

// ErrVsockUnavailable is returned by VsockDialer on hosts without
// vhost-vsock. Connect gives up at once on it.
var ErrVsockUnavailable = errors.New("vsock: /dev/vhost-vsock missing on this host; use the virtio-serial transport")

// vhostVsockPath is a variable so tests can point it elsewhere.
var vhostVsockPath = "/dev/vhost-vsock"

// VsockDialer dials the agent over AF_VSOCK (QEMU -device
// vhost-vsock-pci,guest-cid=CID).
type VsockDialer struct {
	CID, Port uint32
}

// Dial implements Dialer.
func (d VsockDialer) Dial(ctx context.Context) (net.Conn, error) {
	if _, err := os.Stat(vhostVsockPath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrVsockUnavailable
		}
		return nil, fmt.Errorf("%w (%v)", ErrVsockUnavailable, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// vsock.Dial takes no context: run it aside and drop a late result.
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := vsock.Dial(d.CID, d.Port, nil)
		if err != nil {
			ch <- result{nil, err} // not c: a typed nil would look like a conn
			return
		}
		ch <- result{c, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("agent: dial vsock %d:%d: %w", d.CID, d.Port, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("agent: dial vsock %d:%d: %w", d.CID, d.Port, ctx.Err())
	}
}
