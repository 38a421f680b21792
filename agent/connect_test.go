package agent

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flakyListener accepts and drops its first connections, as QEMU's chardev
// socket does before the guest opens its end of the port. A dropped
// connection is either reset at once or, with silent, held open and never
// answered (the bytes went nowhere).
type flakyListener struct {
	net.Listener
	drop     int64
	silent   bool
	accepted atomic.Int64
	held     chan net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.accepted.Add(1) > l.drop {
			return c, nil
		}
		if l.silent {
			l.held <- c
			continue
		}
		if uc, ok := c.(*net.UnixConn); ok {
			uc.CloseRead()
		}
		c.Close()
	}
}

func shrinkConnectTiming(t *testing.T, attempt time.Duration) {
	t.Helper()
	oldA, oldMin, oldMax := connectAttemptTimeout, connectBackoffMin, connectBackoffMax
	connectAttemptTimeout, connectBackoffMin, connectBackoffMax = attempt, time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { connectAttemptTimeout, connectBackoffMin, connectBackoffMax = oldA, oldMin, oldMax })
}

func flakyServer(t *testing.T, drop int64, silent bool) (*flakyListener, UnixDialer) {
	t.Helper()
	path := sockPath(t, "a.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l, drop: drop, silent: silent, held: make(chan net.Conn, drop)}
	t.Cleanup(func() {
		close(fl.held)
		for c := range fl.held {
			c.Close()
		}
	})
	serveTest(t, NewListenerPort(fl))
	return fl, UnixDialer{Path: path}
}

func TestConnectRetriesResets(t *testing.T) {
	shrinkConnectTiming(t, 2*time.Second)
	fl, d := flakyServer(t, 5, false)
	ctx := testCtx(t, 20*time.Second)
	c, err := Connect(ctx, d)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer c.Close()
	if n := fl.accepted.Load(); n != 6 {
		t.Fatalf("server saw %d connections, want 5 dropped + 1", n)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConnectRetriesSilentAttempt(t *testing.T) {
	shrinkConnectTiming(t, 100*time.Millisecond)
	fl, d := flakyServer(t, 2, true)
	ctx := testCtx(t, 20*time.Second)
	start := time.Now()
	c, err := Connect(ctx, d)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer c.Close()
	if n := fl.accepted.Load(); n != 3 {
		t.Fatalf("server saw %d connections, want 2 silent + 1", n)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("connected after %v: the silent attempts were not waited for", el)
	}
}

func TestConnectGivesUpAtDeadline(t *testing.T) {
	shrinkConnectTiming(t, time.Second)
	d := UnixDialer{Path: sockPath(t, "none.sock")}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Connect(ctx, d)
	if err == nil {
		t.Fatal("Connect to nothing succeeded")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Connect returned %v after the deadline", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the context error", err)
	}
	for _, want := range []string{"no answer after", "attempts", "last error", "none.sock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
