package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gqmp "github.com/digitalocean/go-qemu/qmp"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// defaultDialTimeout bounds connect() when Dial's context has no deadline.
const defaultDialTimeout = 10 * time.Second

// transport is what Monitor needs from go-qemu's SocketMonitor. Keeping it
// this narrow lets another QMP client slot in (one that keeps the error
// class, or long replies) without touching the rest of the package.
type transport interface {
	Run(cmd []byte) ([]byte, error)
	RunWithFile(cmd []byte, f *os.File) ([]byte, error)
	Disconnect() error
}

var _ transport = (*gqmp.SocketMonitor)(nil)

// Monitor is one QMP connection to a QEMU.
type Monitor struct {
	t        transport
	socket   string
	version  string
	caps     []string
	log      *logrus.Entry
	done     chan struct{} // closed when the event stream ends: QEMU gone or Close
	closing  sync.Once
	closeErr error
	finished sync.Once
	dropped  atomic.Uint64

	mu   sync.Mutex // guards subs; a leaf lock
	subs map[*subscriber]struct{}
}

// Dial connects to the QMP socket of a QEMU and negotiates capabilities.
//
// If ctx ends while QEMU has not yet greeted us (it serves one client at a
// time, so a second client waits), Dial returns at once; the pending
// connection is closed in the background as soon as QEMU greets it or exits.
func Dial(ctx context.Context, socket string) (*Monitor, error) {
	timeout := defaultDialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := ctx.Err(); err != nil || timeout <= 0 {
		return nil, fmt.Errorf("dial qmp %s: %w", socket, context.DeadlineExceeded)
	}
	sm, err := gqmp.NewSocketMonitor("unix", socket, timeout)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("dial qmp %s: %w: %v", socket, ErrNotFound, err)
		}
		return nil, fmt.Errorf("dial qmp %s: %w", socket, err)
	}
	// go-qemu's Connect cannot be interrupted without racing on its
	// fields, so it runs on its own and is cleaned up when it returns.
	connected := make(chan error, 1)
	go func() { connected <- sm.Connect() }()
	select {
	case err := <-connected:
		if err != nil {
			sm.Disconnect()
			return nil, fmt.Errorf("qmp handshake on %s: %w", socket, err)
		}
	case <-ctx.Done():
		go func() {
			<-connected
			sm.Disconnect()
		}()
		return nil, fmt.Errorf("qmp handshake on %s: %w", socket, ctx.Err())
	}
	// Events must be drained for as long as the connection lives: go-qemu
	// hands them over an unbuffered channel from the loop that also reads
	// command replies.
	events, err := sm.Events(context.Background())
	if err != nil {
		sm.Disconnect()
		return nil, fmt.Errorf("qmp events on %s: %w", socket, err)
	}
	m := newMonitor(sm, socket)
	m.version = sm.Version.String()
	m.caps = sm.Capabilities
	go m.drain(events)
	return m, nil
}

func newMonitor(t transport, socket string) *Monitor {
	return &Monitor{
		t:      t,
		socket: socket,
		log:    logrus.WithField("qmp", socket),
		done:   make(chan struct{}),
		subs:   map[*subscriber]struct{}{},
	}
}

// QEMUVersion is the version QEMU announced in its greeting.
func (m *Monitor) QEMUVersion() string { return m.version }

// Capabilities are the QMP capabilities QEMU offered in its greeting. go-qemu
// accepts none of them (it sends qmp_capabilities without arguments).
func (m *Monitor) Capabilities() []string { return append([]string(nil), m.caps...) }

// Done is closed when the connection is gone: QEMU exited or Close was called.
func (m *Monitor) Done() <-chan struct{} { return m.done }

// Close disconnects. Subscriber channels are closed. It is safe to call
// more than once.
func (m *Monitor) Close() error {
	m.closing.Do(func() {
		m.closeErr = m.t.Disconnect()
		// go-qemu's reader ends the event stream on EOF, but on a read
		// error (ECONNRESET from a killed QEMU) it blocks for ever handing
		// the error to a command nobody runs: do not wait on it.
		select {
		case <-m.done:
		case <-time.After(closeWait):
			m.finish()
		}
	})
	return m.closeErr
}

// closeWait bounds how long Close waits for go-qemu's reader to stop.
const closeWait = time.Second

// CloseWhen closes the monitor once ch is closed: pass the QEMU process's
// Done, so that Done fires even where go-qemu never ends its event stream.
func (m *Monitor) CloseWhen(ch <-chan struct{}) {
	go func() {
		select {
		case <-ch:
			m.Close()
		case <-m.done:
		}
	}()
}

// Execute runs a QMP command. args is marshalled as "arguments" (nil for
// none); the "return" value is unmarshalled into out unless out is nil. A
// QMP error reply is an *Error. If ctx ends first, Execute returns at once;
// the reply, when it comes, is consumed and dropped, so the next command
// still gets its own reply.
func (m *Monitor) Execute(ctx context.Context, cmd string, args, out any) error {
	return m.execute(ctx, cmd, args, nil, out)
}

// ExecuteWithFile is Execute with f passed to QEMU as SCM_RIGHTS ancillary
// data, as getfd and add-fd want. f is duplicated first, so the caller may
// close it as soon as ExecuteWithFile returns.
func (m *Monitor) ExecuteWithFile(ctx context.Context, cmd string, args any, f *os.File, out any) error {
	if f == nil {
		return fmt.Errorf("%w: qmp %s: nil file", ErrInvalid, cmd)
	}
	dup, err := dupFile(f)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	return m.execute(ctx, cmd, args, dup, out)
}

func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

type runResult struct {
	buf []byte
	err error
}

// execute owns file (if any) and closes it once the command is done.
func (m *Monitor) execute(ctx context.Context, cmd string, args any, file *os.File, out any) error {
	closeFile := func() {
		if file != nil {
			file.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		closeFile()
		return fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case <-m.done:
		closeFile()
		return fmt.Errorf("qmp %s: %w", cmd, ErrClosed)
	default:
	}
	req, err := json.Marshal(gqmp.Command{Execute: cmd, Args: args})
	if err != nil {
		closeFile()
		return fmt.Errorf("%w: qmp %s: arguments: %v", ErrInvalid, cmd, err)
	}
	// go-qemu's Run blocks without a way to cancel it; it runs on its own
	// and stays in line for its reply even after ctx has ended.
	res := make(chan runResult, 1)
	go func() {
		defer closeFile()
		var r runResult
		if file == nil {
			r.buf, r.err = m.t.Run(req)
		} else {
			r.buf, r.err = m.t.RunWithFile(req, file)
		}
		res <- r
	}()
	select {
	case r := <-res:
		return m.decode(cmd, r, out)
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", cmd, ctx.Err())
	}
}

func (m *Monitor) decode(cmd string, r runResult, out any) error {
	if r.err != nil {
		return m.runError(cmd, r.err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(r.buf, &resp); err != nil {
		return fmt.Errorf("qmp %s: bad reply %q: %w", cmd, r.buf, err)
	}
	if out == nil || len(resp.Return) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Return, out); err != nil {
		return fmt.Errorf("qmp %s: decoding reply: %w", cmd, err)
	}
	return nil
}

// runError tells a QMP error reply (go-qemu makes it errors.New(desc))
// from a dead connection.
func (m *Monitor) runError(cmd string, err error) error {
	var opErr *net.OpError
	var synErr *json.SyntaxError // a closed reply stream yields an empty reply
	switch {
	case errors.As(err, &opErr), errors.As(err, &synErr), errors.Is(err, io.EOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("qmp %s: %w: %v", cmd, ErrClosed, err)
	case strings.HasPrefix(err.Error(), "The QEMU server doesn't support oob"),
		strings.HasPrefix(err.Error(), "RunWithFile only works"):
		return fmt.Errorf("qmp %s: %w: %v", cmd, errors.ErrUnsupported, err)
	}
	desc := err.Error()
	return &Error{Command: cmd, Class: classify(desc), Desc: desc}
}
