package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/hashicorp/yamux"

	"github.com/katafs/katafs/agent/pb"
)

// Client is a live session with one guest's agent. It is safe for
// concurrent use.
type Client struct {
	sess *yamux.Session
	rpc  *ttrpc.Client
	api  pb.AgentServiceService

	closeOnce sync.Once
	closeErr  error
}

// VersionInfo is what the agent reports about itself.
type VersionInfo struct {
	Agent    string // agent build version
	Protocol string // ProtocolVersion of the agent
	Kernel   string // guest uname -r
}

// newClient starts a yamux client session on conn and ttrpc on its first
// stream. It owns conn from here on, also on error. This is the only place
// that lays ttrpc over yamux on the host; OpenStream adds more streams.
func newClient(conn net.Conn) (*Client, error) {
	sess, err := yamux.Client(conn, muxConfig())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: yamux client: %w", err)
	}
	stream, err := sess.Open()
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("agent: open ttrpc stream: %w", err)
	}
	rpc := ttrpc.NewClient(stream)
	return &Client{sess: sess, rpc: rpc, api: pb.NewAgentServiceClient(rpc)}, nil
}

// OpenStream opens one more yamux stream to the guest (for stdio).
func (c *Client) OpenStream(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// yamux blocks only while too many opens are unacknowledged; do not let
	// that outlive ctx.
	type result struct {
		s   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.sess.OpenStream()
		if err != nil {
			ch <- result{nil, err}
			return
		}
		ch <- result{s, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("agent: open stream: %w", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				r.s.Close()
			}
		}()
		return nil, fmt.Errorf("agent: open stream: %w", ctx.Err())
	}
}

// Done is closed when the session with the agent ends: Close, the guest
// hanging up, or the VM going away.
func (c *Client) Done() <-chan struct{} {
	return c.sess.CloseChan()
}

// closeGrace bounds how long Close waits for the guest to close its end
// of the streams.
var closeGrace = time.Second

// Close ends the session. It does not stop the guest: the agent waits for
// the next connection.
//
// Close is graceful: it closes the ttrpc stream and waits (at most
// closeGrace) until the guest has closed its end too before hanging up.
// The guest may not see a hang-up at all when the next host connects
// quickly (virtio-serial reports EOF only while no host is connected), and
// then its yamux session carries on with the next host; that works only
// if no stream of this session is left open in the guest.
func (c *Client) Close() error {
	return c.close(closeGrace)
}

func (c *Client) close(grace time.Duration) error {
	c.closeOnce.Do(func() {
		rerr := c.rpc.Close()
		c.waitStreamsClosed(grace)
		serr := c.sess.Close()
		if rerr != nil && !errors.Is(rerr, ttrpc.ErrClosed) {
			c.closeErr = fmt.Errorf("agent: close: %w", rerr)
		} else if serr != nil {
			c.closeErr = fmt.Errorf("agent: close: %w", serr)
		}
	})
	return c.closeErr
}

// waitStreamsClosed waits until yamux has dropped every stream (both ends
// closed), the session died, or grace passed. yamux offers no event for
// this, so it polls: the guest answers within milliseconds.
func (c *Client) waitStreamsClosed(grace time.Duration) {
	if grace <= 0 {
		return
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for c.sess.NumStreams() > 0 {
		select {
		case <-deadline.C:
			return
		case <-c.sess.CloseChan():
			return
		case <-tick.C:
		}
	}
}

// Check asks whether the agent serves.
func (c *Client) Check(ctx context.Context) error {
	resp, err := c.api.Check(ctx, &pb.CheckRequest{})
	if err != nil {
		return fmt.Errorf("agent: check: %w", err)
	}
	if resp.GetStatus() != pb.CheckResponse_SERVING {
		return fmt.Errorf("agent: check: agent is %s", resp.GetStatus())
	}
	return nil
}

// Version reports the agent's and the guest kernel's versions.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	resp, err := c.api.Version(ctx, &pb.VersionRequest{})
	if err != nil {
		return VersionInfo{}, fmt.Errorf("agent: version: %w", err)
	}
	return VersionInfo{
		Agent:    resp.GetAgentVersion(),
		Protocol: resp.GetProtocolVersion(),
		Kernel:   resp.GetKernelRelease(),
	}, nil
}

// CreateSandbox names the guest's sandbox and sets its hostname (none if
// hostname is empty).
func (c *Client) CreateSandbox(ctx context.Context, id, hostname string) error {
	_, err := c.api.CreateSandbox(ctx, &pb.CreateSandboxRequest{SandboxId: id, Hostname: hostname})
	if err != nil {
		return fmt.Errorf("agent: create sandbox %s: %w", id, err)
	}
	return nil
}

// DestroySandbox tells the agent to power the VM off. It returns once the
// agent has acknowledged; QEMU exits shortly after.
func (c *Client) DestroySandbox(ctx context.Context) error {
	if _, err := c.api.DestroySandbox(ctx, &pb.DestroySandboxRequest{}); err != nil {
		return fmt.Errorf("agent: destroy sandbox: %w", err)
	}
	return nil
}
