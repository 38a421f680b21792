package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/qmp"
)

// Sandbox is one sandbox: its config, its state and, unless stopped, its VM.
type Sandbox struct {
	m   *Manager
	cfg Config
	log *logrus.Entry

	mu     sync.Mutex // held across whole lifecycle operations
	rec    record
	vm     *vm
	closed chan struct{} // closed once the VM is gone and no new one started

	cmu  sync.Mutex // guards ctrs only; never held across a call
	ctrs containers

	events *eventLog
}

func newSandbox(m *Manager, cfg Config) *Sandbox {
	gone := make(chan struct{})
	close(gone)
	s := &Sandbox{m: m, cfg: cfg, log: m.log.WithField("sandbox", cfg.ID), closed: gone, ctrs: containers{}}
	ev, err := m.openEvents(cfg.ID)
	if err != nil {
		s.log.WithError(err).Warn("no events file")
	}
	s.events = ev
	return s
}

// ID is the sandbox's name.
func (s *Sandbox) ID() string { return s.cfg.ID }

// Config is the sandbox's configuration as created.
func (s *Sandbox) Config() Config { return s.cfg }

// ConsolePath is the log file the guest's serial console goes to.
func (s *Sandbox) ConsolePath() string {
	return s.m.files(s.cfg.ID).ConsoleLog()
}

// Done is closed when the current VM is gone (a stream of its console ends).
func (s *Sandbox) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// create boots a new sandbox, recording it as creating until it is ready
// so that a daemon crash in between is cleaned up on the next start.
func (s *Sandbox) create(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := saveJSON(s.m.store, configKey(s.cfg.ID), s.cfg); err != nil {
		return err
	}
	s.rec = record{State: stateCreating, RunDir: s.m.runDir(s.cfg.ID)}
	if err := s.save(); err != nil {
		s.m.store.Delete(sandboxKey(s.cfg.ID))
		return err
	}
	if err := s.boot(ctx, StateReady); err != nil {
		s.m.store.Delete(sandboxKey(s.cfg.ID))
		os.RemoveAll(s.m.runDir(s.cfg.ID))
		s.events.close()
		os.RemoveAll(filepath.Join(s.m.opts.StateDir, "spool", s.cfg.ID))
		return err
	}
	s.events.emit("created", fmt.Sprintf("ready, qemu pid %d", s.rec.Pid))
	return nil
}

// boot starts a VM and moves to state `to` once the agent answered.
// Caller holds s.mu.
func (s *Sandbox) boot(ctx context.Context, to State) error {
	v, err := s.m.bootVM(ctx, s.cfg, func(pid int) error {
		s.rec.Pid = pid
		return s.save()
	})
	if err != nil {
		return err
	}
	if res, err := s.m.Accel(ctx); err == nil {
		s.rec.Accel = res.Accel
	}
	s.rec.State, s.rec.Reason = to, ""
	s.rec.Started = time.Now().UTC().Format(time.RFC3339)
	if err := s.save(); err != nil {
		v.destroy(context.Background())
		return err
	}
	s.adopt(v)
	return nil
}

// load reattaches to a sandbox's VM from its saved record.
func (s *Sandbox) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := loadJSON(s.m.store, recordKey(s.cfg.ID), &s.rec); err != nil {
		return err
	}
	switch s.rec.State {
	case StateStopped:
		return nil
	case stateCreating:
		// A daemon died while creating it: finish the job of undoing it.
		// The pid may not be recorded yet; QEMU's own pidfile has it.
		s.log.Warn("removing a sandbox whose create never finished")
		if s.rec.Pid == 0 {
			s.rec.Pid = readPidFile(s.m.files(s.cfg.ID).PidFile())
		}
		if p, err := qmp.Attach(s.rec.Pid, s.cfg.ID); err == nil {
			p.Kill()
		}
		os.RemoveAll(s.m.runDir(s.cfg.ID))
		s.m.store.Delete(sandboxKey(s.cfg.ID))
		return fmt.Errorf("%w: sandbox %s (its create was interrupted)", ErrNotFound, s.cfg.ID)
	}
	v, err := s.m.attachVM(ctx, s.cfg, s.rec)
	if err != nil {
		s.log.WithError(err).Warn("VM gone while no daemon ran")
		s.rec.State, s.rec.Reason, s.rec.Pid = StateStopped, "qemu exited while no daemon ran", 0
		return s.save()
	}
	if st, err := v.mon.Status(ctx); err == nil {
		switch {
		case st == "paused" && s.rec.State == StateRunning:
			s.rec.State = StatePaused
		case st == "running" && s.rec.State == StatePaused:
			s.rec.State = StateRunning
		}
	}
	s.adopt(v)
	if err := s.save(); err != nil {
		return err
	}
	s.reattachContainers(ctx, v.agentClient())
	return nil
}

// adopt makes v the sandbox's VM and watches for its QEMU to exit.
// Caller holds s.mu.
func (s *Sandbox) adopt(v *vm) {
	s.vm = v
	s.closed = v.gone
	v.released = make(chan struct{})
	go s.watch(v)
	go s.watchQMP(v)
	go s.watchAgent(v)
}

// watch notes a QEMU that exits by itself: the sandbox becomes stopped.
func (s *Sandbox) watch(v *vm) {
	defer close(v.gone)
	select {
	case <-v.proc.Done():
	case <-v.released:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm != v {
		return // stopped or deleted on purpose
	}
	s.vm = nil
	v.release()
	reason := "qemu exited unexpectedly"
	v.amu.Lock()
	if v.shutdown != "" {
		reason = "qemu exited: " + v.shutdown // e.g. guest-panic, guest-shutdown
	}
	v.amu.Unlock()
	s.rec.State, s.rec.Reason, s.rec.Pid = StateStopped, reason, 0
	s.log.Warn("QEMU exited: sandbox stopped")
	s.unplugAll()
	s.events.emit("qemu-exited", fmt.Sprintf("%v", exitText(v.proc.ExitError())))
	// The processes died with the VM; the containers stay listed,
	// stopped, until deleted.
	s.vmGone()
	if err := s.save(); err != nil {
		s.log.WithError(err).Error("saving state")
	}
}

// save writes the record; caller holds s.mu.
func (s *Sandbox) save() error {
	return saveJSON(s.m.store, recordKey(s.cfg.ID), s.rec)
}

// Status is the sandbox's status file.
func (s *Sandbox) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		ID: s.cfg.ID, State: s.rec.State, Created: s.cfg.Created,
		Factory: s.cfg.Factory, Proxy: s.cfg.Proxy, Shim: s.cfg.Shim,
		Agent: "unreachable", MemoryMiB: s.cfg.MemoryMiB, CPUs: s.cfg.CPUs,
		Reason: s.rec.Reason,
	}
	s.cmu.Lock()
	st.Containers = len(s.ctrs)
	s.cmu.Unlock()
	if s.vm != nil {
		st.Pid = s.vm.proc.Pid
		if cl := s.vm.agentClient(); cl != nil {
			select {
			case <-cl.Done():
			default:
				st.Agent = "ok"
			}
		}
	}
	return st, nil
}

// Start moves a ready sandbox to running, or boots a stopped one again
// and creates its containers again from their saved configs.
func (s *Sandbox) Start(ctx context.Context) error {
	rebooted := false
	err := s.move(ctx, OpStart, func(from State) error {
		if from == StateStopped {
			rebooted = true
			return s.boot(ctx, StateRunning)
		}
		return nil
	})
	if err == nil && rebooted {
		s.recreateContainers(ctx) // needs s.mu, which move held
	}
	return err
}

// Stop shuts the VM down; the sandbox stays, stopped.
func (s *Sandbox) Stop(ctx context.Context) error {
	return s.move(ctx, OpStop, func(State) error {
		// Forget the containers before the VM goes, so that the waiters it
		// wakes record nothing; their saved configs stay for the next start.
		s.dropContainers()
		v := s.vm
		s.vm = nil
		v.stopWatching()
		v.destroy(ctx)
		s.rec.Pid = 0
		s.unplugAll()
		return nil
	})
}

// Pause freezes the VM's CPUs (QMP stop).
func (s *Sandbox) Pause(ctx context.Context) error {
	return s.move(ctx, OpPause, func(State) error { return vmErr(s.vm.mon.Stop(ctx)) })
}

// Resume lets a paused VM run again (QMP cont).
func (s *Sandbox) Resume(ctx context.Context) error {
	return s.move(ctx, OpResume, func(State) error { return vmErr(s.vm.mon.Cont(ctx)) })
}

func vmErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrVM, err)
}

// move runs a state transition: check it is legal, do it, record it.
func (s *Sandbox) move(ctx context.Context, op Op, do func(from State) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.State == "" {
		return fmt.Errorf("%w: sandbox %s", ErrNotFound, s.cfg.ID)
	}
	to, err := transition(op, s.rec.State)
	if err != nil {
		return err
	}
	if s.vm == nil && s.rec.State != StateStopped {
		return fmt.Errorf("%w: sandbox %s has no VM", ErrVM, s.cfg.ID)
	}
	from := s.rec.State
	if err := do(from); err != nil {
		return err
	}
	s.rec.State = to
	if to != StateStopped {
		s.rec.Reason = ""
	} else if op == OpStop {
		s.rec.Reason = "stopped by request"
	}
	s.log.Infof("%s: %s -> %s", op, from, to)
	s.events.emit(stateEvent(op), fmt.Sprintf("%s -> %s", from, to))
	return s.save()
}

// Release drops the daemon's hold on the sandbox; its VM keeps running
// and a later Fetch finds it again.
func (s *Sandbox) Release(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.State == "" {
		return fmt.Errorf("%w: sandbox %s", ErrNotFound, s.cfg.ID)
	}
	// Forget the containers first, so that the process waiters the closing
	// session wakes record nothing: the processes live on in the guest.
	s.cmu.Lock()
	s.ctrs = containers{}
	s.cmu.Unlock()
	if v := s.vm; v != nil {
		s.vm = nil
		v.stopWatching()
		v.release()
	}
	s.m.forget(s.cfg.ID)
	s.events.emit("released", "the VM keeps running")
	s.events.close()
	s.log.Info("released")
	return nil
}

// Delete destroys the VM and removes all of the sandbox's metadata.
func (s *Sandbox) Delete(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.State == "" {
		return fmt.Errorf("%w: sandbox %s", ErrNotFound, s.cfg.ID)
	}
	// Containers first: waiters the dying VM wakes must not save records
	// under a sandbox being deleted.
	s.dropContainers()
	if v := s.vm; v != nil {
		s.vm = nil
		v.stopWatching()
		v.destroy(ctx)
	}
	os.RemoveAll(s.m.runDir(s.cfg.ID))
	s.unplugAll()
	if err := s.m.store.Delete(sandboxKey(s.cfg.ID)); err != nil {
		return err
	}
	s.rec = record{}
	s.m.forget(s.cfg.ID)
	s.events.emit("deleted", "")
	s.events.close()
	os.RemoveAll(filepath.Join(s.m.opts.StateDir, "spool", s.cfg.ID))
	s.log.Info("deleted")
	return nil
}

// dropContainers forgets every container once their VM is gone: their
// processes' streams have ended, so readers of stdout and wait return.
func (s *Sandbox) dropContainers() {
	s.cmu.Lock()
	all := s.ctrs
	s.ctrs = containers{}
	s.cmu.Unlock()
	for _, c := range all {
		c.mu.Lock()
		c.drop()
		c.state = StateStopped
		c.mu.Unlock()
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// readPidFile reads QEMU's -pidfile; 0 if there is none.
func readPidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
