package sandbox

import "fmt"

// Op is a lifecycle operation named as in the sandbox ctl file.
type Op string

const (
	OpStart  Op = "start"
	OpStop   Op = "stop"
	OpPause  Op = "pause"
	OpResume Op = "resume"
)

// legal maps an operation to the states it may start from and the state it
// leads to.
var legal = map[Op]struct {
	from []State
	to   State
}{
	OpStart:  {[]State{StateReady, StateStopped}, StateRunning},
	OpStop:   {[]State{StateReady, StateRunning, StatePaused}, StateStopped},
	OpPause:  {[]State{StateRunning}, StatePaused},
	OpResume: {[]State{StatePaused}, StateRunning},
}

// transition returns the state op leads to from cur, or an ErrBusy error.
func transition(op Op, cur State) (State, error) {
	t, ok := legal[op]
	if !ok {
		return cur, fmt.Errorf("%w: unknown operation %q", ErrInvalid, op)
	}
	for _, s := range t.from {
		if s == cur {
			return t.to, nil
		}
	}
	return cur, fmt.Errorf("%w: cannot %s a sandbox that is %s (allowed from: %v)", ErrBusy, op, cur, t.from)
}
