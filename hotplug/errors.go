package hotplug

import (
	"errors"
	"strings"
)

var (
	// ErrNoSpace: every hotplug root port is taken.
	ErrNoSpace = errors.New("no free hotplug port")
	// ErrInvalid: a bad argument (id, name, image path, MAC, MTU, netns).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: the device to remove does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a device, node or tap of that name already exists.
	ErrExists = errors.New("already exists")
)

// The Monitor interface passes QEMU's error replies through as opaque
// errors, so the few that matter are recognised by QEMU's fixed messages
// (QEMU 7.2; qmp.Error's text carries the class too).

// qmpNotFound: a device or node that is not there.
func qmpNotFound(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "DeviceNotFound") ||
		(strings.Contains(s, "Device '") && strings.Contains(s, "not found")) ||
		strings.Contains(s, "Failed to find node with node-name") ||
		strings.Contains(s, "Cannot find node")
}

// qmpDuplicate: an id or node name already used.
func qmpDuplicate(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "Duplicate") || strings.Contains(s, "already exists") ||
		strings.Contains(s, "node-name=") && strings.Contains(s, "conflicts")
}

// qmpUnplugBusy: the guest has not finished a previous hotplug on that slot
// (QEMU refuses device_del while the power indicator blinks).
func qmpUnplugBusy(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "guest is busy") || strings.Contains(s, "in progress")
}
