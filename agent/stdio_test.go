package agent

import (
	"bytes"
	"io"
	"math/rand"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestStdioHeaderRoundTrip(t *testing.T) {
	b, err := stdioHeader{cid: "c1", execID: "init", kind: StdioStderr}.marshal()
	if err != nil {
		t.Fatal(err)
	}
	h, err := readStdioHeader(bytes.NewReader(b))
	if err != nil || h != (stdioHeader{cid: "c1", execID: "init", kind: StdioStderr}) {
		t.Fatalf("read = %+v, %v", h, err)
	}
	if _, err := readStdioHeader(bytes.NewReader([]byte("\x00\x00\x00\x01ttrpc..."))); !IsInvalidArgument(err) {
		t.Errorf("non-stdio stream: %v", err)
	}
	if _, err := (stdioHeader{cid: "", execID: "x"}).marshal(); !IsInvalidArgument(err) {
		t.Errorf("empty cid: %v", err)
	}
	var buf bytes.Buffer
	writeStdioReply(&buf, nil)
	if err := readStdioReply(&buf); err != nil {
		t.Errorf("OK reply: %v", err)
	}
	writeStdioReply(&buf, errNotFoundForTest)
	if err := readStdioReply(&buf); !IsNotFound(err) {
		t.Errorf("error reply: %v", err)
	}
}

var errNotFoundForTest = func() error {
	rt := NewRuntime(RuntimeConfig{})
	_, err := rt.WaitProcess(nil, "x", "y") //nolint:staticcheck // fails before using ctx
	return err
}()

func TestExitStatusOf(t *testing.T) {
	for _, tc := range []struct {
		ws   unix.WaitStatus
		want ExitStatus
	}{
		{0, ExitStatus{}},
		{3 << 8, ExitStatus{Code: 3}},
		{unix.WaitStatus(unix.SIGTERM), ExitStatus{Code: 143, Signal: "TERM"}},
		{unix.WaitStatus(unix.SIGKILL) | 0x80, ExitStatus{Code: 137, Signal: "KILL"}}, // core flag
	} {
		if got := exitStatusOf(tc.ws); got != tc.want {
			t.Errorf("exitStatusOf(%#x) = %+v, want %+v", int(tc.ws), got, tc.want)
		}
	}
	if s := (ExitStatus{Code: 143, Signal: "TERM"}).String(); s != "signal TERM" {
		t.Errorf("String = %q", s)
	}
}

// TestOutPumpReattach: bytes a dying stream did not take go to the next
// one; the pump reads nothing while no stream is attached.
func TestOutPumpReattach(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.New(rand.NewSource(2)).Read(data)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(data); w.Close() }()
	p := newOutPump(r)
	var got bytes.Buffer
	for i := 0; i < 3; i++ {
		host, guest := net.Pipe() // synchronous: written == read
		p.attach(guest)
		io.CopyN(&got, host, int64(100000+i*777))
		host.Close()
	}
	host, guest := net.Pipe()
	p.attach(guest)
	done := make(chan struct{})
	go func() { io.Copy(&got, host); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stream did not end at EOF of the pipe")
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("got %d bytes, want %d identical", got.Len(), len(data))
	}
	// Attaching after the end: an empty stream.
	host, guest = net.Pipe()
	p.attach(guest)
	if b, _ := io.ReadAll(host); len(b) != 0 {
		t.Errorf("after EOF: %q", b)
	}
}

// TestOutPumpTakeover: a second attach while one is attached wins.
func TestOutPumpTakeover(t *testing.T) {
	r, w, _ := os.Pipe()
	p := newOutPump(r)
	h1, g1 := net.Pipe()
	p.attach(g1)
	w.Write([]byte("one"))
	b := make([]byte, 3)
	io.ReadFull(h1, b)
	h2, g2 := net.Pipe()
	p.attach(g2)
	if _, err := h1.Read(b); err == nil {
		t.Error("old stream still open after takeover")
	}
	w.Write([]byte("two"))
	w.Close()
	if b, _ := io.ReadAll(h2); string(b) != "two" {
		t.Errorf("new stream got %q", b)
	}
}

func TestStdinSink(t *testing.T) {
	r, w, _ := os.Pipe()
	k := newStdinSink(w, false)
	// A stream whose session died: stdin stays open.
	h, g := net.Pipe()
	k.attach(g, func() bool { return true })
	h.Write([]byte("ab"))
	h.Close()
	h, g = net.Pipe()
	k.attach(g, func() bool { return false })
	h.Write([]byte("cd"))
	h.Close() // the host's EOF: the process's EOF
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "abcd" {
		t.Errorf("stdin got %q, %v", b, err)
	}
}
