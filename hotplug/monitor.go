package hotplug

import (
	"context"
	"fmt"
	"os"
)

// Monitor is what hotplug needs of QMP (sandbox adapts *qmp.Monitor to it).
type Monitor interface {
	// Execute runs a QMP command; args is marshalled as "arguments" (nil
	// for none) and the "return" value is decoded into out unless out is nil.
	Execute(ctx context.Context, cmd string, args any, out any) error
	// ExecuteWithFile is Execute with f passed as SCM_RIGHTS (getfd). The
	// caller keeps f and may close it when ExecuteWithFile returns.
	ExecuteWithFile(ctx context.Context, cmd string, args any, out any, f *os.File) error
	// Events subscribes to every QMP event from now on; cancel ends the
	// subscription. A subscription is taken before the command that causes
	// the awaited event, so the event cannot slip by.
	Events() (ch <-chan Event, cancel func())
}

// Event is an asynchronous QMP event.
type Event struct {
	Name string
	Data map[string]any
}

// deviceDeleted reports whether e is QEMU's DEVICE_DELETED for device id.
// QEMU also sends one for a device's inner parts (".../virtio-backend"),
// which carry a path but no device id.
func deviceDeleted(e Event, id string) bool {
	if e.Name != "DEVICE_DELETED" {
		return false
	}
	got, _ := e.Data["device"].(string)
	return got == id
}

// waitDeviceDeleted reads events until DEVICE_DELETED for id, the channel
// closes (monitor gone) or ctx ends.
func waitDeviceDeleted(ctx context.Context, events <-chan Event, id string) error {
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return fmt.Errorf("monitor closed before device %s was deleted", id)
			}
			if deviceDeleted(e, id) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the guest to release device %s: %w", id, ctx.Err())
		}
	}
}
