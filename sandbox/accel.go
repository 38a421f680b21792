package sandbox

import (
	"context"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/qmp"
)

// accelResolver runs the accelerator probe once, in the background, and
// lets any number of callers wait for its answer.
type accelResolver struct {
	done chan struct{}
	once sync.Once
	opts qmp.ProbeOptions
	log  *logrus.Entry
	res  qmp.ProbeResult
	err  error
}

func newAccelResolver(o qmp.ProbeOptions, log *logrus.Entry) *accelResolver {
	return &accelResolver{done: make(chan struct{}), opts: o, log: log}
}

// start begins the probe without waiting for it.
func (a *accelResolver) start() {
	a.once.Do(func() {
		go func() {
			defer close(a.done)
			a.res, a.err = qmp.ProbeAccel(context.Background(), a.opts)
			if a.err != nil {
				a.log.WithError(a.err).Error("accelerator probe failed")
				return
			}
			a.log.WithFields(logrus.Fields{"accel": a.res.Accel, "kvm": a.res.KVMUsable, "cached": a.res.Cached}).
				Info("accelerator: " + a.res.Reason)
		}()
	})
}

func (a *accelResolver) get(ctx context.Context) (qmp.ProbeResult, error) {
	a.start()
	select {
	case <-a.done:
		return a.res, a.err
	case <-ctx.Done():
		return qmp.ProbeResult{}, ctx.Err()
	}
}
