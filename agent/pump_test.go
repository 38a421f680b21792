package agent

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// A process that prints a line and then sleeps must have that line
// delivered at once, also when its pipe's fd is in blocking mode (as one
// passed over SCM_RIGHTS is): tail -f depends on it.
func TestPumpDeliversPartialOutputFromABlockingPipe(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fds[0]), "r") // blocking: not registered with the poller
	w := os.NewFile(uintptr(fds[1]), "w")
	defer w.Close()
	p := newOutPump(r)
	host, guest := net.Pipe()
	defer host.Close()
	p.attach(guest)
	w.Write([]byte("tick1\n"))
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := host.Read(b)
		got <- string(b[:n])
	}()
	select {
	case s := <-got:
		if s != "tick1\n" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a line the process printed was held back while it still ran")
	}
}
