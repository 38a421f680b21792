package sandbox

import (
	"errors"
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"TERM": syscall.SIGTERM, "SIGKILL": syscall.SIGKILL, "9": syscall.SIGKILL, "int": syscall.SIGINT, " HUP\n": syscall.SIGHUP} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "BOGUS", "0", "65", "-1", "SIG"} {
		if _, err := ParseSignal(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSignal(%q) = %v, want ErrInvalid", in, err)
		}
	}
	if SignalName(syscall.SIGTERM) != "TERM" {
		t.Error(SignalName(syscall.SIGTERM))
	}
	if s := (ExitStatus{Code: 3}).String(); s != "exit 3" {
		t.Error(s)
	}
	if s := (ExitStatus{Code: 143, Signal: "TERM"}).String(); s != "signal TERM" {
		t.Error(s)
	}
}
