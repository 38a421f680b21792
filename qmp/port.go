package qmp

import (
	"context"
	"fmt"
)

// WaitPortOpen waits on events (from Subscribe, taken before the guest
// could open the port) until the guest has opened the virtio-serial port
// with device id. QEMU says so with VSERPORT_CHANGE; a host that connects
// only then never sends bytes into a port nobody reads yet.
func WaitPortOpen(ctx context.Context, events <-chan Event, id string) error {
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return fmt.Errorf("%w: monitor closed before port %s opened", ErrClosed, id)
			}
			if portOpened(e, id) {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the guest to open port %s: %w", id, ctx.Err())
		}
	}
}

func portOpened(e Event, id string) bool {
	if e.Name != "VSERPORT_CHANGE" {
		return false
	}
	got, _ := e.Data["id"].(string)
	open, _ := e.Data["open"].(bool)
	return got == id && open
}
