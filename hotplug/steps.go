package hotplug

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Bounds on work that must finish even when the caller's ctx has ended.
const (
	// commandTimeout bounds one QMP command of an add (device_add and
	// friends answer at once; only a wedged QEMU takes longer).
	commandTimeout = 30 * time.Second
	// undoTimeout bounds the whole rollback of a failed add.
	undoTimeout = 30 * time.Second
	// DefaultRemoveTimeout bounds the wait for the guest to release a
	// device when the caller's ctx has no deadline.
	DefaultRemoveTimeout = 2 * time.Minute
)

// step is one named step of an add, with the undo of what it did (nil when
// there is nothing to undo), in the manner of firecracker-go-sdk's handler
// lists: tests replace or fail single steps by name.
type step struct {
	name string
	do   func(ctx context.Context) error
	undo func(ctx context.Context) error
}

// runSteps runs steps in order. Each do gets a context that is not
// cancelled with ctx (see doc.go); ctx is checked between steps. On the
// first failure the steps already done are undone, newest first, and the
// error names the failed step (undo failures are joined to it).
func runSteps(ctx context.Context, log *logrus.Entry, steps []step) error {
	for i, s := range steps {
		err := ctx.Err()
		if err == nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandTimeout)
			err = s.do(sctx)
			cancel()
		}
		if err == nil {
			continue
		}
		err = fmt.Errorf("%s: %w", s.name, err)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		for j := i - 1; j >= 0; j-- {
			if steps[j].undo == nil {
				continue
			}
			if uerr := steps[j].undo(uctx); uerr != nil {
				log.WithError(uerr).WithField("step", steps[j].name).Warn("hotplug: rollback step failed")
				err = errors.Join(err, fmt.Errorf("undo %s: %w", steps[j].name, uerr))
			}
		}
		cancel()
		return err
	}
	return nil
}

// removeCtx gives a remove a deadline when its caller set none.
func removeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultRemoveTimeout)
}

// unplug asks QEMU to remove device id and waits for DEVICE_DELETED. It
// reports gone=false when QEMU had no such device (nothing to wait for).
// While the guest is still busy with an earlier hotplug of that slot QEMU
// refuses device_del and says so only by that error, so device_del is
// retried with a backoff until it is accepted or ctx ends.
func unplug(ctx context.Context, m Monitor, id string) (existed bool, err error) {
	events, cancel := m.Events()
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		err = m.Execute(ctx, "device_del", map[string]any{"id": id}, nil)
		if err == nil {
			break
		}
		if qmpNotFound(err) {
			return false, nil
		}
		if !qmpUnplugBusy(err) {
			return true, fmt.Errorf("device_del %s: %w", id, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return true, fmt.Errorf("device_del %s: %w (last: %v)", id, ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
	return true, waitDeviceDeleted(ctx, events, id)
}
