package fs

import (
	"bufio"
	"strings"
	"syscall"
	"testing"
)

func TestPendingSignals(t *testing.T) {
	status := "Name:\tbash\nSigQ:\t0/63379\nSigPnd:\t0000000000010000\nShdPnd:\t0000000000000002\nSigBlk:\t0000000000000000\n"
	m, err := pendingSignals(bufio.NewScanner(strings.NewReader(status)))
	if err != nil {
		t.Fatal(err)
	}
	if want := sigmask(syscall.SIGCHLD, syscall.SIGINT); m != want {
		t.Errorf("pending %x; want %x", m, want)
	}
	if m&^harmless != sigmask(syscall.SIGINT) {
		t.Errorf("SIGINT not seen as a stop request")
	}
	if sigmask(syscall.SIGCHLD, syscall.SIGURG, syscall.SIGWINCH)&^harmless != 0 {
		t.Errorf("notifications seen as stop requests")
	}
	if _, err := pendingSignals(bufio.NewScanner(strings.NewReader("Name:\tx\n"))); err == nil {
		t.Errorf("status without pending masks accepted")
	}
}
