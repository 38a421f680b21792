package qmp

import (
	"os"
	"testing"
	"time"

	gqmp "github.com/digitalocean/go-qemu/qmp"
)

// stuckTransport is go-qemu after a read error: Disconnect returns, but
// the event stream never ends.
type stuckTransport struct{}

func (stuckTransport) Run([]byte) ([]byte, error)                   { return nil, os.ErrClosed }
func (stuckTransport) RunWithFile([]byte, *os.File) ([]byte, error) { return nil, os.ErrClosed }
func (stuckTransport) Disconnect() error                            { return nil }

func TestCloseDoesNotWaitForAStuckEventStream(t *testing.T) {
	m := newMonitor(stuckTransport{}, "stuck")
	go m.drain(make(chan gqmp.Event)) // never closed
	ch, _ := m.Subscribe()
	begin := time.Now()
	m.Close()
	if d := time.Since(begin); d > closeWait+time.Second {
		t.Fatalf("Close took %v", d)
	}
	waitClosed(t, m.Done(), time.Second, "Done")
	if _, ok := <-ch; ok {
		t.Fatal("subscriber channel still open")
	}
}

func TestCloseWhenProcessExits(t *testing.T) {
	m := newMonitor(stuckTransport{}, "stuck")
	go m.drain(make(chan gqmp.Event))
	exited := make(chan struct{})
	m.CloseWhen(exited)
	close(exited)
	waitClosed(t, m.Done(), 3*time.Second, "Done after the process exited")
}
