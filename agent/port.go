package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Port is the guest end of the host channel. Like a virtio-serial port it
// carries one host connection at a time and outlives it.
type Port interface {
	// Attach blocks until a host is connected and returns that
	// connection. Closing the connection makes its pending and later
	// reads and writes fail but leaves the port ready for the next Attach.
	Attach(ctx context.Context) (io.ReadWriteCloser, error)
	// Close releases the port.
	Close() error
}

// portDevice is the one fd under a virtio-serial port, kept for the life
// of the VM. Reads return EOF at once while no host is connected.
type portDevice interface {
	io.ReadWriter
	SetDeadline(t time.Time) error
	// HostConnected reports whether a host holds the other end (for
	// virtio-serial: poll(2) reports no POLLHUP).
	HostConnected() (bool, error)
	Close() error
}

// hostPollInterval is how often devicePort.Attach looks for a host. poll(2)
// cannot wait for POLLHUP to clear (it reports the hang-up at once), so
// Attach sleeps between looks; this bounds the reconnect latency.
var hostPollInterval = 20 * time.Millisecond

// devicePort is a Port over a portDevice.
type devicePort struct {
	dev portDevice
	// next holds the bytes of the next host's session, read by the
	// previous portConn when it found them (see sessionSplitter).
	next []byte
}

// Attach implements Port. It does not spin while the host is away.
func (p *devicePort) Attach(ctx context.Context) (io.ReadWriteCloser, error) {
	tick := time.NewTicker(hostPollInterval)
	defer tick.Stop()
	for p.next == nil { // with bytes of the next host in hand, it is here
		ok, err := p.dev.HostConnected()
		if err != nil {
			return nil, fmt.Errorf("agent: port: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	// The previous connection's Close left a deadline in the past.
	if err := p.dev.SetDeadline(time.Time{}); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return nil, fmt.Errorf("agent: port: clear deadline: %w", err)
	}
	c := &portConn{dev: p.dev, port: p, buf: p.next}
	p.next = nil
	return c, nil
}

// Close implements Port.
func (p *devicePort) Close() error {
	return p.dev.Close()
}

// hangupGrace bounds how long after a goodbye the host's hang-up is
// expected: Client.Close hangs up right after its goodbye, so an EOF later
// than this belongs to another host.
var hangupGrace = 2 * time.Second

// portConn is one host session on a devicePort. Read is called by one
// goroutine at a time (yamux's receive loop).
type portConn struct {
	dev    portDevice
	port   *devicePort
	closed atomic.Bool

	buf   []byte // read from dev, not yet returned
	rbuf  []byte // scratch for reads from dev
	split sessionSplitter

	// expectHangup is armed by ExpectHangup and disarmed by the first EOF,
	// the first write (we answered: the host is a live one) or hangupBy.
	expectHangup atomic.Bool
	hangupBy     time.Time // set before the session starts reading
}

// ExpectHangup says that the host of the previous session said goodbye
// and may not have hung up yet. Its EOF can reach us after the next
// host's first bytes (virtio-console handles open/close messages in a work
// queue, data in the interrupt); that EOF, seen while a host is connected
// again, must not end this session, which already carries the next host's
// bytes. It is called before the session starts.
func (c *portConn) ExpectHangup() {
	c.hangupBy = time.Now().Add(hangupGrace)
	c.expectHangup.Store(true)
}

// Read returns the bytes of this host session. It ends the session (EOF)
// where the next host's session starts, keeping its bytes for the next
// Attach, or when the host hangs up.
func (c *portConn) Read(b []byte) (int, error) {
	for {
		if c.closed.Load() {
			return 0, io.EOF
		}
		if len(c.buf) > 0 {
			n, next := c.split.vet(c.buf, len(b))
			if next {
				c.port.next = c.buf
				c.buf = nil
				return 0, io.EOF
			}
			if n > 0 {
				copy(b, c.buf[:n])
				c.buf = c.buf[n:]
				return n, nil
			}
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// fill reads more bytes from the device into buf.
func (c *portConn) fill() error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 32*1024)
	}
	for {
		n, err := c.dev.Read(c.rbuf)
		if n > 0 {
			c.buf = append(c.buf, c.rbuf[:n]...)
			return nil
		}
		if err != io.EOF || !c.expectHangup.Swap(false) || time.Now().After(c.hangupBy) {
			if err == nil {
				continue
			}
			return err
		}
		// The goodbye host's late hang-up with the next host already
		// there: carry on. With nobody there, end the session: nothing of
		// the next host has been read yet.
		ok, herr := c.dev.HostConnected()
		if herr != nil {
			return herr
		}
		if !ok {
			return io.EOF
		}
	}
}

func (c *portConn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, io.ErrClosedPipe
	}
	c.expectHangup.Store(false)
	return c.dev.Write(b)
}

// Close ends the connection but not the fd: a deadline in the past wakes
// any reader or writer still blocked (a write blocks while the host is
// away), and the closed flag keeps new calls off the fd.
func (c *portConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if err := c.dev.SetDeadline(time.Unix(1, 0)); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return err
	}
	return nil
}

// listenerPort is a Port over a stream listener: each accepted connection
// is one host connection. It serves the agent outside a VM (tests, the
// -listen flag of katafs-agent).
type listenerPort struct {
	l net.Listener
}

// NewListenerPort returns a Port that accepts host connections on l.
func NewListenerPort(l net.Listener) Port {
	return &listenerPort{l: l}
}

// Attach implements Port.
func (p *listenerPort) Attach(ctx context.Context) (io.ReadWriteCloser, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := p.l.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("agent: accept: %w", r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		// Unblock Accept; the port is finished when its server's ctx is.
		p.l.Close()
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return nil, ctx.Err()
	}
}

// Close implements Port.
func (p *listenerPort) Close() error {
	return p.l.Close()
}
