package qmp

import (
	"context"
	"errors"
	"fmt"
)

// StatusInfo is the reply of query-status.
type StatusInfo struct {
	Status  string `json:"status"` // prelaunch, running, paused, inmigrate, shutdown, ...
	Running bool   `json:"running"`
}

// QueryStatus runs query-status.
func (m *Monitor) QueryStatus(ctx context.Context) (StatusInfo, error) {
	var st StatusInfo
	err := m.Execute(ctx, "query-status", nil, &st)
	return st, err
}

// Status is the VM run state from query-status ("running", "paused", ...).
func (m *Monitor) Status(ctx context.Context) (string, error) {
	st, err := m.QueryStatus(ctx)
	return st.Status, err
}

// Stop pauses the guest's vCPUs (QEMU sends a STOP event).
func (m *Monitor) Stop(ctx context.Context) error { return m.Execute(ctx, "stop", nil, nil) }

// Cont resumes the guest, or starts it from prelaunch (-S).
func (m *Monitor) Cont(ctx context.Context) error { return m.Execute(ctx, "cont", nil, nil) }

// Quit asks QEMU to exit. The connection closing before the reply arrives
// counts as success: QEMU may exit before it flushes its answer.
func (m *Monitor) Quit(ctx context.Context) error {
	select {
	case <-m.done:
		return fmt.Errorf("qmp quit: %w", ErrClosed)
	default:
	}
	err := m.Execute(ctx, "quit", nil, nil)
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}
