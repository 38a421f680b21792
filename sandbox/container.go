package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/agent"
)

// InitProcess is the ID of a container's own first process.
const InitProcess = "init"

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
var stopGrace = 10 * time.Second

// Container is one container of a sandbox: a process tree in its own
// namespaces in the guest. Lock order: Sandbox.cmu, then Container.mu, then
// Process.mu; none is held across an agent call except Container.mu, which
// serialises the container's lifecycle operations.
type Container struct {
	sb   *Sandbox
	cfg  ContainerConfig
	spec []byte
	log  *logrus.Entry
	// rootDevice is the disk that carries the container's root ("" for
	// the guest's built-in root); set at creation, never changed.
	rootDevice string

	mu    sync.Mutex
	state State
	procs map[string]*Process
}

// containers is the sandbox's set of containers, guarded by Sandbox.cmu.
type containers map[string]*Container

// Containers lists the sandbox's container IDs.
func (s *Sandbox) Containers(ctx context.Context) ([]string, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return sortedKeys(s.ctrs), nil
}

// sortedKeys lists a map's names in order.
func sortedKeys[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Container finds one container.
func (s *Sandbox) Container(ctx context.Context, id string) (*Container, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c := s.ctrs[id]
	if c == nil {
		return nil, fmt.Errorf("%w: container %s in sandbox %s", ErrNotFound, id, s.cfg.ID)
	}
	return c, nil
}

// agentClient is the live agent session, or an error saying why there is
// none (the sandbox is not ready or running).
func (s *Sandbox) agentClient(op string) (*agent.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.rec.State {
	case StateReady, StateRunning:
	default:
		return nil, fmt.Errorf("%w: cannot %s: sandbox %s is %s (want ready or running)", ErrBusy, op, s.cfg.ID, s.rec.State)
	}
	var cl *agent.Client
	if s.vm != nil {
		cl = s.vm.agentClient()
	}
	if cl == nil {
		return nil, fmt.Errorf("%w: sandbox %s: agent unreachable", ErrVM, s.cfg.ID)
	}
	return cl, nil
}

// CreateContainer is CreateContainer: the container exists (not started)
// and its init process's output is already being drained.
func (s *Sandbox) CreateContainer(ctx context.Context, cfg ContainerConfig) error {
	if err := ValidID(cfg.ID); err != nil {
		return err
	}
	spec := containerSpec(cfg)
	if cfg.Bundle != "" {
		bspec, root, err := loadBundle(cfg.Bundle)
		if err != nil {
			return err
		}
		if len(cfg.Args) > 0 {
			bspec.Process.Args = cfg.Args
		}
		bspec.Process.Terminal = bspec.Process.Terminal || cfg.TTY
		cfg.TTY = bspec.Process.Terminal
		if cfg.Rootfs == "" {
			cfg.Rootfs = root
		}
		if bspec.Hostname == "" {
			bspec.Hostname = cfg.ID
		}
		spec = bspec
	}
	cl, err := s.agentClient("create a container")
	if err != nil {
		return err
	}
	s.cmu.Lock()
	if s.ctrs[cfg.ID] != nil {
		s.cmu.Unlock()
		return fmt.Errorf("%w: container %s", ErrExists, cfg.ID)
	}
	c := &Container{sb: s, cfg: cfg, state: StateReady, procs: map[string]*Process{},
		log: s.log.WithField("container", cfg.ID)}
	s.ctrs[cfg.ID] = c // reserve the ID; removed again on failure
	s.cmu.Unlock()

	fail := func(err error) error {
		if c.rootDevice != "" {
			s.mu.Lock()
			s.removeBlock(context.Background(), c.rootDevice)
			s.mu.Unlock()
		}
		s.cmu.Lock()
		delete(s.ctrs, cfg.ID)
		s.cmu.Unlock()
		return err
	}
	if cfg.Rootfs != "" {
		// The image goes in read-only; the guest puts a writable overlay on it.
		img, err := s.m.rootImage(ctx, cfg.Rootfs)
		if err != nil {
			return fail(err)
		}
		s.mu.Lock()
		d, err := s.addBlock(ctx, DeviceConfig{ID: rootDeviceID(cfg.ID), Kind: "block", Path: img, ReadOnly: true})
		s.mu.Unlock()
		if err != nil {
			return fail(err)
		}
		c.rootDevice = d.ID
		spec.Root = &specs.Root{Path: d.Guest, Readonly: true}
	}
	c.spec, _ = json.MarshalIndent(spec, "", "  ")
	if err := cl.CreateContainer(ctx, cfg.ID, spec, cfg.TTY); err != nil {
		return fail(agentErr("create container "+cfg.ID, err))
	}
	p, err := c.newProcess(InitProcess, cfg.TTY)
	if err == nil {
		err = p.attach(ctx, cl)
	}
	if err != nil {
		cl.RemoveContainer(context.Background(), cfg.ID)
		return fail(err)
	}
	c.mu.Lock()
	c.procs[InitProcess] = p
	err = c.save()
	c.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	c.log.Info("container created")
	return nil
}

func containerSpec(cfg ContainerConfig) *specs.Spec {
	if len(cfg.Args) == 0 {
		cfg.Args = []string{"sh"}
	}
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: cfg.ID,
		Process: &specs.Process{
			Terminal: cfg.TTY,
			Args:     cfg.Args,
			Env:      []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "TERM=xterm"},
			Cwd:      "/",
		},
	}
}

// ID is the container's name.
func (c *Container) ID() string { return c.cfg.ID }

// Spec is the container's OCI runtime spec as JSON.
func (c *Container) Spec() []byte { return c.spec }

// spoolDir is where a process's output is kept.
func (c *Container) spoolDir(pid string) string {
	return filepath.Join(c.sb.m.opts.StateDir, "spool", c.sb.cfg.ID, c.cfg.ID, pid)
}

// Status is StatusContainer.
func (c *Container) Status(ctx context.Context) (ContainerStatus, error) {
	// A paused sandbox has every container paused. Sandbox.mu is taken
	// and let go before Container.mu, as the lock order wants.
	c.sb.mu.Lock()
	sbPaused := c.sb.rec.State == StatePaused
	c.sb.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ContainerStatus{ID: c.cfg.ID, State: c.state}
	if sbPaused && st.State == StateRunning {
		st.State = StatePaused
	}
	if p := c.procs[InitProcess]; p != nil {
		ps := p.status()
		st.Pid, st.Exit = ps.Pid, ps.Exit
	}
	return st, nil
}

// Start is StartContainer: the init process runs.
func (c *Container) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateReady {
		return fmt.Errorf("%w: cannot start container %s: it is %s (want ready)", ErrBusy, c.cfg.ID, c.state)
	}
	cl, err := c.sb.agentClient("start a container")
	if err != nil {
		return err
	}
	pid, err := cl.StartContainer(ctx, c.cfg.ID)
	if err != nil {
		return agentErr("start container "+c.cfg.ID, err)
	}
	c.state = StateRunning
	c.procs[InitProcess].started(cl, pid, c.initExited)
	c.save()
	c.log.WithField("pid", pid).Info("container started")
	return nil
}

// initExited is called once the init process has ended and its output is
// drained: the container is stopped.
func (c *Container) initExited() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = StateStopped
	if c.sb.hasContainer(c) {
		c.save()
	}
}

// Kill is KillContainer: a signal to the init process.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal) error {
	return c.initSignal(ctx, sig)
}

func (c *Container) initSignal(ctx context.Context, sig syscall.Signal) error {
	c.mu.Lock()
	state, p := c.state, c.procs[InitProcess]
	c.mu.Unlock()
	if state != StateRunning && state != StatePaused {
		return fmt.Errorf("%w: container %s is %s: nothing to signal", ErrBusy, c.cfg.ID, state)
	}
	return p.Signal(ctx, sig)
}

// Stop is StopContainer: SIGTERM, then SIGKILL after a grace period, and
// returns once the init process is gone.
func (c *Container) Stop(ctx context.Context) error {
	c.mu.Lock()
	state, p := c.state, c.procs[InitProcess]
	c.mu.Unlock()
	if state == StateStopped || state == StateReady {
		return fmt.Errorf("%w: container %s is %s already", ErrBusy, c.cfg.ID, state)
	}
	if state == StatePaused {
		if err := c.Resume(ctx); err != nil {
			return err
		}
	}
	if err := p.Signal(ctx, syscall.SIGTERM); err != nil {
		return err
	}
	gctx, cancel := context.WithTimeout(ctx, stopGrace)
	_, err := p.Wait(gctx)
	cancel()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := p.Signal(ctx, syscall.SIGKILL); err != nil {
		return err
	}
	_, err = p.Wait(ctx)
	return err
}

// Pause freezes every process of the container.
func (c *Container) Pause(ctx context.Context) error {
	return c.freeze(ctx, StateRunning, StatePaused, "pause")
}

// Resume thaws a paused container.
func (c *Container) Resume(ctx context.Context) error {
	return c.freeze(ctx, StatePaused, StateRunning, "resume")
}

func (c *Container) freeze(ctx context.Context, from, to State, op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != from {
		return fmt.Errorf("%w: cannot %s container %s: it is %s (want %s)", ErrBusy, op, c.cfg.ID, c.state, from)
	}
	cl, err := c.sb.agentClient(op + " a container")
	if err != nil {
		return err
	}
	if op == "pause" {
		err = cl.PauseContainer(ctx, c.cfg.ID)
	} else {
		err = cl.ResumeContainer(ctx, c.cfg.ID)
	}
	if err != nil {
		return agentErr(op+" container "+c.cfg.ID, err)
	}
	c.state = to
	return c.save()
}

// Delete is DeleteContainer. A running container must be stopped or
// killed first (EBUSY).
func (c *Container) Delete(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateRunning || c.state == StatePaused {
		return fmt.Errorf("%w: container %s is %s: stop or kill it first", ErrBusy, c.cfg.ID, c.state)
	}
	if cl, err := c.sb.agentClient("delete a container"); err == nil {
		if err := cl.RemoveContainer(ctx, c.cfg.ID); err != nil && !isNotFound(err) {
			return agentErr("remove container "+c.cfg.ID, err)
		}
	}
	c.sb.cmu.Lock()
	delete(c.sb.ctrs, c.cfg.ID)
	c.sb.cmu.Unlock()
	c.drop()
	if err := c.sb.m.store.Delete(containerKey(c.sb.cfg.ID, c.cfg.ID)); err != nil {
		return err
	}
	c.log.Info("container deleted")
	if c.rootDevice != "" {
		// Its root disk goes too; Sandbox.mu is taken after Container.mu
		// is released (Sandbox.mu comes first in the lock order).
		c.mu.Unlock()
		c.sb.mu.Lock()
		err := c.sb.removeBlock(ctx, c.rootDevice)
		c.sb.mu.Unlock()
		c.mu.Lock()
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("container %s deleted, but its root disk was not detached: %w", c.cfg.ID, err)
		}
	}
	return nil
}

// drop releases every process's streams and removes their spools; caller
// holds c.mu or owns c.
func (c *Container) drop() {
	for _, p := range c.procs {
		// Its VM is going (stop, delete) or it has ended: readers of
		// wait get an answer; one that ended keeps its own.
		p.finish(ExitStatus{Code: 128 + int(syscall.SIGKILL), Signal: "KILL"})
		p.remove()
	}
	c.procs = map[string]*Process{}
}

func isNotFound(err error) bool {
	return errors.Is(agentErr("", err), ErrNotFound)
}
