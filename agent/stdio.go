package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/hashicorp/yamux"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Stdio streams.
//
// The first yamux stream of a session is ttrpc (the host opens it first,
// see newClient); every later stream the host opens is one stdio stream of
// one process. It starts with a header naming it:
//
//	"kfio" version(1) kind(1) len(cid)(1) cid len(execID)(1) execID
//
// and the guest answers with one status byte (a grpc code, 0 = OK), then
// for an error a 2-byte big-endian length and a message, and closes the
// stream. After OK the stream carries raw bytes: host to guest for stdin,
// guest to host for stdout and stderr, closed (FIN) by the writer at the
// end. The guest never opens streams. Stream ids of stdio streams are odd
// and above 1, so sessionSplitter's rule (a second SYN of stream 1 is a new
// host) is untouched.

// StdioKind names one stdio stream of a process.
type StdioKind int

const (
	StdioStdin StdioKind = iota
	StdioStdout
	StdioStderr
)

func (k StdioKind) String() string {
	switch k {
	case StdioStdin:
		return "stdin"
	case StdioStdout:
		return "stdout"
	case StdioStderr:
		return "stderr"
	}
	return fmt.Sprintf("StdioKind(%d)", int(k))
}

const (
	stdioMagic   = "kfio"
	stdioVersion = 1
	maxIDLen     = 255
)

// ErrStreamBroken is returned by reads and writes of a stdio stream whose
// session died (host Close, guest gone) before the stream ended: unlike
// io.EOF it does not mean the process's output ended. After a reconnect,
// OpenStdio again gets the rest of the output.
var ErrStreamBroken = errors.New("agent: stdio stream broken: session closed")

// stdioHeader is what the host sends first on a stdio stream.
type stdioHeader struct {
	cid, execID string
	kind        StdioKind
}

func (h stdioHeader) marshal() ([]byte, error) {
	if len(h.cid) == 0 || len(h.cid) > maxIDLen || len(h.execID) == 0 || len(h.execID) > maxIDLen {
		return nil, status.Errorf(codes.InvalidArgument, "bad container or exec id %q/%q", h.cid, h.execID)
	}
	if h.kind < StdioStdin || h.kind > StdioStderr {
		return nil, status.Errorf(codes.InvalidArgument, "bad stdio kind %d", h.kind)
	}
	b := make([]byte, 0, 8+len(h.cid)+len(h.execID))
	b = append(b, stdioMagic...)
	b = append(b, stdioVersion, byte(h.kind), byte(len(h.cid)))
	b = append(b, h.cid...)
	b = append(b, byte(len(h.execID)))
	b = append(b, h.execID...)
	return b, nil
}

func readStdioHeader(r io.Reader) (stdioHeader, error) {
	var h stdioHeader
	fixed := make([]byte, 7)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return h, err
	}
	if string(fixed[:4]) != stdioMagic || fixed[4] != stdioVersion {
		return h, status.Errorf(codes.InvalidArgument, "not a stdio stream header: % x", fixed)
	}
	h.kind = StdioKind(fixed[5])
	if h.kind > StdioStderr {
		return h, status.Errorf(codes.InvalidArgument, "bad stdio kind %d", fixed[5])
	}
	cid := make([]byte, int(fixed[6])+1)
	if _, err := io.ReadFull(r, cid); err != nil {
		return h, err
	}
	exec := make([]byte, int(cid[len(cid)-1]))
	if _, err := io.ReadFull(r, exec); err != nil {
		return h, err
	}
	h.cid, h.execID = string(cid[:len(cid)-1]), string(exec)
	return h, nil
}

func writeStdioReply(w io.Writer, err error) error {
	if err == nil {
		_, werr := w.Write([]byte{0})
		return werr
	}
	st, _ := status.FromError(err)
	msg := st.Message()
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	code := st.Code()
	if code == codes.OK {
		code = codes.Unknown
	}
	b := []byte{byte(code), byte(len(msg) >> 8), byte(len(msg))}
	_, werr := w.Write(append(b, msg...))
	return werr
}

func readStdioReply(r io.Reader) error {
	var b [3]byte
	if _, err := io.ReadFull(r, b[:1]); err != nil {
		return err
	}
	if b[0] == 0 {
		return nil
	}
	if _, err := io.ReadFull(r, b[1:3]); err != nil {
		return err
	}
	msg := make([]byte, int(b[1])<<8|int(b[2]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return err
	}
	return status.Error(codes.Code(b[0]), string(msg))
}

// OpenStdio opens the stream kind of process execID of container cid. For
// stdout and stderr the returned conn yields the process's output and
// then io.EOF once the process and every child holding the pipe have
// closed it; output written before the call waits in the guest. For stdin
// writes go to the process in order; Close (or CloseWrite) gives it EOF.
// Reads or writes fail with ErrStreamBroken if the session dies first;
// open again after reconnecting for the rest. A second OpenStdio of the
// same stream takes over from the first, which is closed.
func (c *Client) OpenStdio(ctx context.Context, cid, execID string, kind StdioKind) (net.Conn, error) {
	hdr, err := stdioHeader{cid: cid, execID: execID, kind: kind}.marshal()
	if err != nil {
		return nil, fmt.Errorf("agent: open %s of %s/%s: %w", kind, cid, execID, err)
	}
	s, err := c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		if _, err := s.Write(hdr); err != nil {
			done <- err
			return
		}
		done <- readStdioReply(s)
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Close()
		err = ctx.Err()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("agent: open %s of %s/%s: %w", kind, cid, execID, err)
	}
	return &stdioConn{Conn: s, sess: c.sess}, nil
}

// stdioConn tells a session's death apart from the stream's end.
type stdioConn struct {
	net.Conn
	sess *yamux.Session
}

func (c *stdioConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.sess.IsClosed() {
		err = ErrStreamBroken
	}
	return n, err
}

func (c *stdioConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.sess.IsClosed() {
		err = ErrStreamBroken
	}
	return n, err
}

// CloseWrite ends the host's side of the stream (stdin EOF for the
// process); a yamux Close is a half-close already.
func (c *stdioConn) CloseWrite() error { return c.Conn.Close() }

// IsNotFound reports whether err is the agent's "no such container or
// process".
func IsNotFound(err error) bool { return status.Code(unwrapStatus(err)) == codes.NotFound }

// IsAlreadyExists reports whether err is the agent's "duplicate id".
func IsAlreadyExists(err error) bool { return status.Code(unwrapStatus(err)) == codes.AlreadyExists }

// IsFailedPrecondition reports whether err is the agent's "wrong state".
func IsFailedPrecondition(err error) bool {
	return status.Code(unwrapStatus(err)) == codes.FailedPrecondition
}

// IsInvalidArgument reports whether err is the agent's "bad request".
func IsInvalidArgument(err error) bool {
	return status.Code(unwrapStatus(err)) == codes.InvalidArgument
}

// unwrapStatus finds the innermost error that carries a grpc status
// (status.Code only looks at the outermost on older grpc versions).
func unwrapStatus(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := e.(interface{ GRPCStatus() *status.Status }); ok {
			return e
		}
	}
	return err
}
