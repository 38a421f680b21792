package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/containerd/ttrpc"
	"github.com/hashicorp/yamux"
	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/agent/pb"
)

// hangupExpecter is implemented by host connections of ports that cannot
// tell one host connection from the next (virtio-serial): after a host
// said goodbye, its hang-up must not end the next session.
type hangupExpecter interface {
	ExpectHangup()
}

// ServePort serves svc on p, one host session after another, until ctx
// ends (it returns ctx.Err()) or a session in which DestroySandbox was
// called has ended (it returns nil). Each session gets a fresh yamux
// server session and ttrpc server, so a host (katafs restarted, a second
// Connect) can come back any number of times.
//
// A session ends when the host closes its control stream (the ttrpc
// stream, closed by Client.Close: a goodbye), when the host hangs up
// without one (Read returns EOF), or on a protocol error. The goodbye
// marks the boundary between two hosts exactly; the virtio-serial EOF
// does not, since a host that reconnects at once may never show one, or
// show one only after the next host's first bytes.
func ServePort(ctx context.Context, p Port, svc *Service) error {
	goodbye := false
	for n := 1; ; n++ {
		conn, err := p.Attach(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("agent: wait for host: %w", err)
		}
		if he, ok := conn.(hangupExpecter); ok && goodbye {
			he.ExpectHangup()
		}
		log := logrus.WithField("session", n)
		log.Debug("agent: host session started")
		goodbye, err = serveConn(ctx, conn, svc)
		log.WithError(err).WithField("goodbye", goodbye).Debug("agent: host session ended")
		select {
		case <-svc.Destroyed():
			return nil
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// serveConn runs one yamux server session with ttrpc on conn until the
// session ends, and reports whether it ended with the host's goodbye. This
// is the only place that lays ttrpc over yamux in the guest. It returns
// once yamux has let go of conn (its read and write loops have exited),
// so the caller may reuse the fd under conn.
func serveConn(ctx context.Context, conn io.ReadWriteCloser, svc *Service) (goodbye bool, err error) {
	sess, err := yamux.Server(conn, muxConfig())
	if err != nil {
		conn.Close()
		return false, fmt.Errorf("agent: yamux server: %w", err)
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		sess.Close()
		return false, fmt.Errorf("agent: ttrpc server: %w", err)
	}
	pb.RegisterAgentServiceService(srv, svc)

	l := &streamListener{Session: sess, controlClosed: make(chan struct{}), svc: svc}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	served := false
	select {
	case <-sess.CloseChan():
	case <-l.controlClosed:
		goodbye = true
	case <-ctx.Done():
	case err = <-done:
		served = true
	}
	srv.Close()
	sess.Close() // waits for yamux's loops: conn is free after this
	if !served {
		err = <-done
	}
	if errors.Is(err, ttrpc.ErrServerClosed) || errors.Is(err, yamux.ErrSessionShutdown) {
		err = nil
	}
	return goodbye, err
}

// streamListener hands the session's first stream to ttrpc: the host's
// control stream (newClient opens it first); its closing is the host's
// goodbye. Every later stream is a stdio stream (see stdio.go) and goes to
// the service instead.
type streamListener struct {
	*yamux.Session
	accepted      atomic.Int64
	controlClosed chan struct{}
	svc           *Service
}

func (l *streamListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Session.Accept()
		if err != nil {
			return nil, err
		}
		if l.accepted.Add(1) == 1 {
			return &controlConn{Conn: c, closed: l.controlClosed}, nil
		}
		go l.svc.serveStdio(c, l.Session.IsClosed)
	}
}

// controlConn is the control stream; ttrpc closes it when the host has
// closed its end (or when the server shuts down).
type controlConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *controlConn) Close() error {
	err := c.Conn.Close() // sends our FIN before the session goes
	c.once.Do(func() { close(c.closed) })
	return err
}
