package agent

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

type exit struct {
	pid int
	ws  unix.WaitStatus
}

// fakeWait4 hands out scripted exits, then ECHILD.
type fakeWait4 struct {
	exits []exit
	calls int
}

func (f *fakeWait4) wait4(pid int, ws *unix.WaitStatus, options int, _ *unix.Rusage) (int, error) {
	f.calls++
	if pid != -1 || options&unix.WNOHANG == 0 {
		return 0, errors.New("reaper must wait4(-1, WNOHANG)")
	}
	if len(f.exits) == 0 {
		return 0, unix.ECHILD
	}
	e := f.exits[0]
	f.exits = f.exits[1:]
	*ws = e.ws
	return e.pid, nil
}

func TestReaperDeliversRegisteredAndDropsOrphans(t *testing.T) {
	fw := &fakeWait4{}
	r := NewReaper()
	r.wait4 = fw.wait4

	ch, err := r.Spawn(func() (int, error) { return 42, nil })
	if err != nil {
		t.Fatal(err)
	}
	exit3 := unix.WaitStatus(3 << 8) // exited with status 3
	fw.exits = []exit{{7, 0}, {42, exit3}, {8, 0}}
	r.Reap() // one SIGCHLD for three children
	if len(fw.exits) != 0 {
		t.Fatalf("%d children left unreaped", len(fw.exits))
	}
	select {
	case ws := <-ch:
		if ws.ExitStatus() != 3 {
			t.Fatalf("exit status %d, want 3", ws.ExitStatus())
		}
	default:
		t.Fatal("registered child's status not delivered")
	}

	if _, err := r.Spawn(func() (int, error) { return 0, errors.New("fork failed") }); err == nil {
		t.Fatal("Spawn hid the start error")
	}
}
