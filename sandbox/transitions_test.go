package sandbox

import (
	"errors"
	"strings"
	"testing"
)

func TestTransitions(t *testing.T) {
	all := []State{StateReady, StateRunning, StatePaused, StateStopped}
	want := map[Op]map[State]State{
		OpStart:  {StateReady: StateRunning, StateStopped: StateRunning},
		OpStop:   {StateReady: StateStopped, StateRunning: StateStopped, StatePaused: StateStopped},
		OpPause:  {StateRunning: StatePaused},
		OpResume: {StatePaused: StateRunning},
	}
	for op, m := range want {
		for _, from := range all {
			got, err := transition(op, from)
			if to, ok := m[from]; ok {
				if err != nil || got != to {
					t.Errorf("%s from %s = %s, %v; want %s", op, from, got, err, to)
				}
				continue
			}
			if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), string(from)) {
				t.Errorf("%s from %s: err = %v, want ErrBusy naming the state", op, from, err)
			}
		}
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"a", "s1", "A.b_c-d", strings.Repeat("x", 64)} {
		if err := ValidID(id); err != nil {
			t.Errorf("ValidID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "..", ".a", "a/b", "-a", "a b", strings.Repeat("x", 65), strings.Repeat("y", 100)} {
		if err := ValidID(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidID(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

func TestRootDeviceIDFitsAVirtioSerial(t *testing.T) {
	for _, cid := range []string{"c1", "0abc", strings.Repeat("x", 64)} {
		id := rootDeviceID(cid)
		if len(id) > 20 || !strings.HasPrefix(id, "root-") {
			t.Errorf("rootDeviceID(%q) = %q", cid, id)
		}
	}
	if rootDeviceID("c1") != "root-c1" {
		t.Error(rootDeviceID("c1"))
	}
}
