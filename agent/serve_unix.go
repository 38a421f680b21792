package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// ServeUnix serves the agent on a unix socket at path, one host
// connection at a time, without any PID 1 duty and without touching the
// hostname. It returns nil after DestroySandbox, ctx.Err() when ctx ends.
// It is the agent outside a VM: tests and debugging. Containers work
// there too when run as root (the binary must dispatch IsContainerInit).
func ServeUnix(ctx context.Context, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	port := NewListenerPort(l)
	defer port.Close()
	return ServePort(ctx, port, NewService(ServiceConfig{Containers: NewRuntime(RuntimeConfig{})}))
}
