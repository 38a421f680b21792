package qmp

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalid: a bad Config or option.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: no such process.
	ErrNotFound = errors.New("not found")
	// ErrBusy: a live QEMU already uses that run directory.
	ErrBusy = errors.New("busy")
	// ErrClosed: the monitor connection is closed (QEMU gone or Close called).
	ErrClosed = errors.New("qmp monitor closed")
	// ErrMismatch: the process exists but is not the QEMU we were asked for.
	ErrMismatch = errors.New("not the expected qemu")
	// ErrReleased: the Process was released and no longer controls QEMU.
	ErrReleased = errors.New("process released")
)

// QMP error classes (QEMU qapi/error.json).
const (
	ClassGenericError    = "GenericError"
	ClassCommandNotFound = "CommandNotFound"
	ClassDeviceNotActive = "DeviceNotActive"
	ClassDeviceNotFound  = "DeviceNotFound"
	ClassKVMMissingCap   = "KVMMissingCap"
)

// Error is an error reply from QEMU to a command.
type Error struct {
	Command string
	Class   string
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// classify recovers the class of a QMP error reply from its description.
// go-qemu keeps only the description (its response.Err is errors.New(desc)),
// so the class is matched against the fixed messages QEMU uses for the
// non-generic classes; everything else is GenericError, which is what QEMU
// uses for nearly every error.
func classify(desc string) string {
	switch {
	case strings.HasPrefix(desc, "The command ") && strings.HasSuffix(desc, " has not been found"):
		return ClassCommandNotFound
	case strings.HasPrefix(desc, "Device '") && (strings.HasSuffix(desc, "' not found") ||
		strings.HasSuffix(desc, "' has not been found")):
		return ClassDeviceNotFound
	case strings.HasPrefix(desc, "No ") && strings.HasSuffix(desc, " device has been activated"):
		return ClassDeviceNotActive
	}
	return ClassGenericError
}
