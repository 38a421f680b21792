package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeVport emulates the guest fd of a virtio-serial port as seen on the
// project's machines: one fd for the life of the VM; host connections
// come and go; while no host is connected reads return EOF at once and
// HostConnected is false (POLLHUP); writes block until a host comes.
type fakeVport struct {
	mu       sync.Mutex
	guest    net.Conn // guest end of the current host connection, or nil
	deadline time.Time
	// silentReconnect: a host may connect while one is connected, and
	// the guest reads on from the new one without an EOF in between.
	silentReconnect bool

	eofReads atomic.Int64 // reads that returned EOF: a spinning server shows here
	polls    atomic.Int64
}

var _ portDevice = (*fakeVport)(nil)

func (d *fakeVport) current() (net.Conn, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.guest, d.deadline
}

func (d *fakeVport) Read(b []byte) (int, error) {
	for {
		c, _ := d.current()
		if c == nil {
			d.eofReads.Add(1)
			return 0, io.EOF
		}
		n, err := c.Read(b)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
			if d.silentReconnect {
				if c2, _ := d.current(); c2 != nil && c2 != c {
					continue
				}
				// Wait for the next host rather than report the hang-up.
				if _, dl := d.current(); !dl.IsZero() && time.Now().After(dl) {
					return 0, os.ErrDeadlineExceeded
				}
				time.Sleep(time.Millisecond)
				continue
			}
			d.eofReads.Add(1)
			return n, io.EOF
		}
		return n, err
	}
}

func (d *fakeVport) Write(b []byte) (int, error) {
	for {
		c, dl := d.current()
		if c != nil {
			return c.Write(b)
		}
		if !dl.IsZero() && time.Now().After(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		time.Sleep(time.Millisecond)
	}
}

func (d *fakeVport) SetDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline = t
	if d.guest != nil {
		d.guest.SetDeadline(t)
	}
	return nil
}

func (d *fakeVport) HostConnected() (bool, error) {
	d.polls.Add(1)
	c, _ := d.current()
	return c != nil, nil
}

func (d *fakeVport) Close() error { return nil }

// Dial connects a host, as a client connecting to QEMU's chardev socket.
func (d *fakeVport) Dial(ctx context.Context) (net.Conn, error) {
	g, h := net.Pipe()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.guest != nil && !d.silentReconnect {
		return nil, errors.New("fake vport: a host is already connected")
	}
	d.guest = g
	if !d.deadline.IsZero() {
		g.SetDeadline(d.deadline)
	}
	return &fakeHostConn{Conn: h, d: d, g: g}, nil
}

type fakeHostConn struct {
	net.Conn
	d *fakeVport
	g net.Conn
}

// Close hangs up: from now on the port reports POLLHUP.
func (c *fakeHostConn) Close() error {
	c.d.mu.Lock()
	if c.d.guest == c.g && !c.d.silentReconnect {
		c.d.guest = nil
	}
	c.d.mu.Unlock()
	return c.Conn.Close()
}

func TestReconnectSamePort(t *testing.T) {
	dev := &fakeVport{}
	h := serveTest(t, &devicePort{dev: dev})
	ctx := testCtx(t, 30*time.Second)
	for i := 1; i <= 3; i++ {
		c, err := Connect(ctx, dev)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if _, err := c.Version(ctx); err != nil {
			t.Fatalf("connection %d: Version: %v", i, err)
		}
		if i == 2 {
			if err := c.CreateSandbox(ctx, "sb", "sb"); err != nil {
				t.Fatalf("connection %d: CreateSandbox: %v", i, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatalf("connection %d: Close: %v", i, err)
		}
		// The service outlives the connection.
		if i >= 2 && h.svc.SandboxID() != "sb" {
			t.Fatalf("connection %d: sandbox id lost", i)
		}
	}

	// With the host gone the server must wait, not spin on EOF.
	eof0, polls0 := dev.eofReads.Load(), dev.polls.Load()
	time.Sleep(10 * hostPollInterval)
	if n := dev.eofReads.Load() - eof0; n > 2 {
		t.Errorf("%d EOF reads in %v without a host: the server spins", n, 10*hostPollInterval)
	}
	if n := dev.polls.Load() - polls0; n < 1 || n > 30 {
		t.Errorf("%d host polls in %v, want about 10", n, 10*hostPollInterval)
	}

	// And it still serves after that.
	c, err := Connect(ctx, dev)
	if err != nil {
		t.Fatalf("after idle: %v", err)
	}
	defer c.Close()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPortConnCloseWakesBlockedCalls(t *testing.T) {
	dev := &fakeVport{}
	p := &devicePort{dev: dev}
	host, err := dev.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	conn, err := p.Attach(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	readDone := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		readDone <- err
	}()
	writeDone := make(chan error, 1)
	go func() {
		_, err := conn.Write([]byte("x")) // the silent host never reads
		writeDone <- err
	}()
	time.Sleep(10 * time.Millisecond)
	conn.Close()
	for name, ch := range map[string]chan error{"read": readDone, "write": writeDone} {
		select {
		case err := <-ch:
			if err == nil {
				t.Errorf("blocked %s returned no error after Close", name)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("blocked %s not woken by Close", name)
		}
	}
	if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read after Close: %v, want EOF", err)
	}

	// The next Attach clears the deadline: the port works again.
	conn2, err := p.Attach(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ping := yamuxFrame(2, 1, 0, 7) // a whole frame: Read holds back partial headers
	go host.Write(ping)
	b := make([]byte, 64)
	if n, err := conn2.Read(b); err != nil || string(b[:n]) != string(ping) {
		t.Fatalf("Read on the next connection: %q, %v", b[:n], err)
	}
}

func TestAttachWaitsForHost(t *testing.T) {
	dev := &fakeVport{}
	p := &devicePort{dev: dev}
	ctx, cancel := context.WithTimeout(context.Background(), 5*hostPollInterval)
	defer cancel()
	if _, err := p.Attach(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Attach without host: %v, want deadline exceeded", err)
	}
	if n := dev.polls.Load(); n > 10 {
		t.Fatalf("%d polls in %v: Attach spins", n, 5*hostPollInterval)
	}
}

// scriptedVport replays reads: each entry is data, or nil for EOF. Attach
// sees a host; HostConnected is false after that if down is set.
type scriptedVport struct {
	fakeVport
	reads    [][]byte
	down     bool
	attached bool
}

func (d *scriptedVport) Read(b []byte) (int, error) {
	if len(d.reads) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	r := d.reads[0]
	d.reads = d.reads[1:]
	if r == nil {
		return 0, io.EOF
	}
	return copy(b, r), nil
}

func (d *scriptedVport) HostConnected() (bool, error) {
	if !d.attached {
		d.attached = true
		return true, nil
	}
	return !d.down, nil
}

func (d *scriptedVport) Write(b []byte) (int, error) { return len(b), nil }

func readAll3(t *testing.T, c io.Reader) []string {
	t.Helper()
	var got []string
	b := make([]byte, 64)
	for i := 0; i < 3; i++ {
		n, err := c.Read(b)
		if err != nil {
			got = append(got, "EOF")
			continue
		}
		got = append(got, string(b[:n]))
	}
	return got
}

// After a goodbye, the old host's hang-up may come after the next host's
// first bytes (virtio-console handles the open/close messages in a work
// queue, data in the interrupt). That EOF must not end the session.
func TestPortConnSkipsExpectedHangup(t *testing.T) {
	// Whole yamux frames (pings), as Read holds back partial headers.
	fNew, fMore, fX, fY, fZ, fQ := yamuxFrame(2, 1, 0, 1), yamuxFrame(2, 1, 0, 2), yamuxFrame(2, 1, 0, 3),
		yamuxFrame(2, 1, 0, 4), yamuxFrame(2, 1, 0, 5), yamuxFrame(2, 1, 0, 6)
	dev := &scriptedVport{reads: [][]byte{fNew, nil, fMore}}
	conn, err := (&devicePort{dev: dev}).Attach(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn.(hangupExpecter).ExpectHangup()
	if got := readAll3(t, conn); got[0] != string(fNew) || got[1] != string(fMore) {
		t.Fatalf("reads %v, want [new more ...]: the expected hang-up ended the session", got)
	}

	// Without a goodbye an EOF is the end of the session.
	dev = &scriptedVport{reads: [][]byte{fX, nil, fY}}
	conn, _ = (&devicePort{dev: dev}).Attach(context.Background())
	if got := readAll3(t, conn); got[1] != "EOF" {
		t.Fatalf("reads %v, want EOF second", got)
	}

	// With no host back, the hang-up ends the session: nothing of the
	// next host was read yet.
	dev = &scriptedVport{reads: [][]byte{nil, fZ}, down: true}
	conn, _ = (&devicePort{dev: dev}).Attach(context.Background())
	conn.(hangupExpecter).ExpectHangup()
	if got := readAll3(t, conn); got[0] != "EOF" {
		t.Fatalf("reads %v: the hang-up was skipped with no host there", got)
	}

	// Once we have answered, the host is a live one: its EOF ends the
	// session.
	dev = &scriptedVport{reads: [][]byte{fQ, nil, fZ}}
	conn, _ = (&devicePort{dev: dev}).Attach(context.Background())
	conn.(hangupExpecter).ExpectHangup()
	conn.Read(make([]byte, 64))
	conn.Write([]byte("answer"))
	if n, err := conn.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("read after an answer: %d, %v, want EOF", n, err)
	}

	// Only one hang-up is expected, and only for a while.
	dev = &scriptedVport{reads: [][]byte{nil, nil, fZ}}
	conn, _ = (&devicePort{dev: dev}).Attach(context.Background())
	conn.(hangupExpecter).ExpectHangup()
	if got := readAll3(t, conn); got[0] != "EOF" {
		t.Fatalf("reads %v: a second EOF was skipped too", got)
	}
	old := hangupGrace
	hangupGrace = -time.Second
	defer func() { hangupGrace = old }()
	dev = &scriptedVport{reads: [][]byte{nil, fZ}}
	conn, _ = (&devicePort{dev: dev}).Attach(context.Background())
	conn.(hangupExpecter).ExpectHangup()
	if n, err := conn.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("read after the grace: %d, %v, want EOF", n, err)
	}
}

// A host that dies without a goodbye (katafs killed) leaves the guest
// session with open streams; the next host must still get a fresh one.
func TestReconnectAfterHostCrash(t *testing.T) {
	dev := &fakeVport{}
	serveTest(t, &devicePort{dev: dev})
	ctx := testCtx(t, 30*time.Second)
	for i := 1; i <= 3; i++ {
		conn, err := dev.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newClient(conn)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(ctx); err != nil {
			t.Fatalf("crash %d: Check: %v", i, err)
		}
		conn.Close() // no goodbye: the socket just goes
		c.close(0)
	}
	c, err := Connect(ctx, dev)
	if err != nil {
		t.Fatalf("Connect after crashes: %v", err)
	}
	defer c.Close()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
