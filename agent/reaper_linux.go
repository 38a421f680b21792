package agent

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Reaper collects exited children, as PID 1 must: orphans are re-parented
// to it and stay zombies otherwise. Children the agent cares about are
// started through Spawn, which hands their exit status to the caller
// instead of dropping it.
type Reaper struct {
	// wait4 is unix.Wait4; tests replace it.
	wait4 func(pid int, ws *unix.WaitStatus, options int, ru *unix.Rusage) (int, error)

	// mu is held across each wait4 sweep and across Spawn's start, so a
	// child cannot be reaped between its fork and its registration.
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
}

// NewReaper returns a Reaper; call Run to start reaping.
func NewReaper() *Reaper {
	return &Reaper{wait4: unix.Wait4, waiters: map[int]chan unix.WaitStatus{}}
}

// Run reaps on every SIGCHLD until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	r.Reap() // children that exited before Notify
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			r.Reap()
		}
	}
}

// Reap collects every exited child now. Signals coalesce, so one SIGCHLD
// may stand for many children: loop until none is left.
func (r *Reaper) Reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := r.wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited
			return
		}
		if w, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			w <- ws
			continue
		}
		logrus.WithFields(logrus.Fields{"pid": pid, "status": ws.ExitStatus()}).Debug("agent: reaped orphan")
	}
}

// Spawn runs start, which forks a child and returns its pid, and returns a
// channel that receives the child's exit status once it is reaped.
func (r *Reaper) Spawn(start func() (int, error)) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[pid] = ch
	return ch, nil
}
