package fs

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"

	"github.com/katafs/katafs/sandbox"
)

// fakeContainers are a fake sandbox's containers. The zero value is
// ready to use.
type fakeContainers struct {
	cmu  sync.Mutex
	ctrs map[string]*fakeContainer
}

func (s *fakeContainers) count() int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return len(s.ctrs)
}

func (s *fakeContainers) Containers(ctx context.Context) ([]string, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	var ids []string
	for id := range s.ctrs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func (s *fakeContainers) Container(ctx context.Context, id string) (Container, error) {
	c, err := s.ctr(id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *fakeContainers) ctr(id string) (*fakeContainer, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c, ok := s.ctrs[id]
	if !ok {
		return nil, fmt.Errorf("%w: container %s", sandbox.ErrNotFound, id)
	}
	return c, nil
}

func (s *fakeContainers) CreateContainer(ctx context.Context, cfg sandbox.ContainerConfig) error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if _, ok := s.ctrs[cfg.ID]; ok {
		return fmt.Errorf("%w: container %s", sandbox.ErrExists, cfg.ID)
	}
	if s.ctrs == nil {
		s.ctrs = map[string]*fakeContainer{}
	}
	args := cfg.Args
	if len(args) == 0 {
		args = []string{"sh"}
	}
	c := &fakeContainer{owner: s, cfg: cfg, state: sandbox.StateReady, procs: map[string]*fakeProcess{}}
	c.procs["init"] = newFakeProcess(sandbox.ProcessConfig{ID: "init", TTY: cfg.TTY, Args: args}, 100)
	s.ctrs[cfg.ID] = c
	return nil
}

// fakeContainer is a container with the state rules and processes that
// produce output only when a test makes them.
type fakeContainer struct {
	owner *fakeContainers

	mu    sync.Mutex
	cfg   sandbox.ContainerConfig
	state sandbox.State
	procs map[string]*fakeProcess
	execs []sandbox.ProcessConfig // what Exec was asked, in order
	kills []syscall.Signal
	pid   int
}

var _ Container = (*fakeContainer)(nil)

func (c *fakeContainer) ID() string { return c.cfg.ID }
func (c *fakeContainer) Spec() []byte {
	return []byte(`{"ociVersion":"1.1.0","process":{"args":["sh"]}}`)
}

func (c *fakeContainer) Status(ctx context.Context) (sandbox.ContainerStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := sandbox.ContainerStatus{ID: c.cfg.ID, State: c.state}
	if c.state != sandbox.StateReady {
		st.Pid = 100
	}
	if c.state == sandbox.StateStopped {
		st.Exit = "signal TERM"
	}
	return st, nil
}

func (c *fakeContainer) move(verb string, to sandbox.State, from ...sandbox.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range from {
		if c.state == f {
			c.state = to
			return nil
		}
	}
	return fmt.Errorf("%w: %s: container %s is %s", sandbox.ErrBusy, verb, c.cfg.ID, c.state)
}

func (c *fakeContainer) Start(ctx context.Context) error {
	return c.move("start", sandbox.StateRunning, sandbox.StateReady)
}
func (c *fakeContainer) Stop(ctx context.Context) error {
	return c.move("stop", sandbox.StateStopped, sandbox.StateRunning, sandbox.StatePaused)
}
func (c *fakeContainer) Pause(ctx context.Context) error {
	return c.move("pause", sandbox.StatePaused, sandbox.StateRunning)
}
func (c *fakeContainer) Resume(ctx context.Context) error {
	return c.move("resume", sandbox.StateRunning, sandbox.StatePaused)
}

func (c *fakeContainer) Delete(ctx context.Context) error {
	c.mu.Lock()
	running := c.state == sandbox.StateRunning || c.state == sandbox.StatePaused
	c.mu.Unlock()
	if running {
		return fmt.Errorf("%w: delete: container %s is running", sandbox.ErrBusy, c.cfg.ID)
	}
	c.owner.cmu.Lock()
	delete(c.owner.ctrs, c.cfg.ID)
	c.owner.cmu.Unlock()
	return nil
}

func (c *fakeContainer) Kill(ctx context.Context, sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != sandbox.StateRunning {
		return fmt.Errorf("%w: kill: container %s is %s", sandbox.ErrBusy, c.cfg.ID, c.state)
	}
	c.kills = append(c.kills, sig)
	return nil
}

func (c *fakeContainer) Processes(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.procs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func (c *fakeContainer) Process(ctx context.Context, id string) (Process, error) {
	p, err := c.proc(id)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (c *fakeContainer) proc(id string) (*fakeProcess, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.procs[id]
	if !ok {
		return nil, fmt.Errorf("%w: process %s", sandbox.ErrNotFound, id)
	}
	return p, nil
}

func (c *fakeContainer) Exec(ctx context.Context, cfg sandbox.ProcessConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != sandbox.StateRunning {
		return fmt.Errorf("%w: exec: container %s is %s", sandbox.ErrBusy, c.cfg.ID, c.state)
	}
	if _, ok := c.procs[cfg.ID]; ok {
		return fmt.Errorf("%w: process %s", sandbox.ErrExists, cfg.ID)
	}
	c.execs = append(c.execs, cfg)
	c.pid++
	c.procs[cfg.ID] = newFakeProcess(cfg, 200+c.pid)
	return nil
}

// fakeProcess is a process whose output, end and stdin a test drives.
type fakeProcess struct {
	cfg    sandbox.ProcessConfig
	pid    int
	stdout *fakeStream
	stderr *fakeStream // nil with a tty
	ended  chan struct{}

	mu        sync.Mutex
	exit      sandbox.ExitStatus
	stdin     []byte
	writers   int
	stdinEOF  bool
	signals   []syscall.Signal
	rows      uint16
	cols      uint16
	stdinHold chan struct{} // when set, WriteStdin waits for it or ctx
}

var _ Process = (*fakeProcess)(nil)

func newFakeProcess(cfg sandbox.ProcessConfig, pid int) *fakeProcess {
	p := &fakeProcess{cfg: cfg, pid: pid, stdout: newFakeStream(), ended: make(chan struct{}), rows: 24, cols: 80}
	if !cfg.TTY {
		p.stderr = newFakeStream()
	}
	return p
}

func (p *fakeProcess) ID() string { return p.cfg.ID }

func (p *fakeProcess) Status(ctx context.Context) (sandbox.ProcessStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := sandbox.ProcessStatus{ID: p.cfg.ID, State: "running", Pid: p.pid, TTY: p.cfg.TTY, StdoutBytes: p.stdout.Size()}
	if p.stderr != nil {
		st.StderrBytes = p.stderr.Size()
	}
	select {
	case <-p.ended:
		st.State = "exited"
		st.Exit = p.exit.String()
	default:
	}
	return st, nil
}

func (p *fakeProcess) Stdout() Stream { return p.stdout }

func (p *fakeProcess) Stderr() Stream {
	if p.stderr == nil {
		return nil
	}
	return p.stderr
}

func (p *fakeProcess) OpenStdin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writers++
}

func (p *fakeProcess) WriteStdin(ctx context.Context, b []byte) (int, error) {
	p.mu.Lock()
	hold := p.stdinHold
	p.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.ended:
		return 0, io.ErrClosedPipe
	default:
	}
	p.stdin = append(p.stdin, b...)
	return len(b), nil
}

func (p *fakeProcess) ReleaseStdin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writers--
	if p.writers == 0 {
		p.stdinEOF = true
	}
	return nil
}

// stdinState is what the process read from stdin and whether it saw EOF.
func (p *fakeProcess) stdinState() (string, bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.stdin), p.stdinEOF, p.writers
}

func (p *fakeProcess) Signal(ctx context.Context, sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signals = append(p.signals, sig)
	return nil
}

func (p *fakeProcess) signalsGot() []syscall.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]syscall.Signal(nil), p.signals...)
}

func (p *fakeProcess) Resize(ctx context.Context, rows, cols uint16) error {
	if !p.cfg.TTY {
		return fmt.Errorf("%w: process %s has no tty", sandbox.ErrInvalid, p.cfg.ID)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows, p.cols = rows, cols
	return nil
}

func (p *fakeProcess) Winsize() (uint16, uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rows, p.cols
}

func (p *fakeProcess) Wait(ctx context.Context) (sandbox.ExitStatus, error) {
	select {
	case <-p.ended:
	case <-ctx.Done():
		return sandbox.ExitStatus{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit, nil
}

// end makes the process exit with es: its streams end, Wait returns.
func (p *fakeProcess) end(es sandbox.ExitStatus) {
	p.mu.Lock()
	p.exit = es
	p.mu.Unlock()
	p.stdout.end()
	if p.stderr != nil {
		p.stderr.end()
	}
	close(p.ended)
}

// fakeStream is an in-memory Stream.
type fakeStream struct {
	mu    sync.Mutex
	data  []byte
	ended bool
	grew  chan struct{} // closed and replaced on every append and at the end
}

var _ Stream = (*fakeStream)(nil)

func newFakeStream() *fakeStream { return &fakeStream{grew: make(chan struct{})} }

func (s *fakeStream) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.data))
}

func (s *fakeStream) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	for {
		s.mu.Lock()
		if off < int64(len(s.data)) {
			n := copy(p, s.data[off:])
			s.mu.Unlock()
			return n, nil
		}
		ended, grew := s.ended, s.grew
		s.mu.Unlock()
		if ended {
			return 0, io.EOF
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (s *fakeStream) write(b string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, b...)
	close(s.grew)
	s.grew = make(chan struct{})
}

func (s *fakeStream) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	close(s.grew)
	s.grew = make(chan struct{})
}

// fakeProc finds a process of the fake backend.
func (b *fakeBackend) fakeProc(sb, ctr, proc string) (*fakeProcess, error) {
	s, err := b.get(sb)
	if err != nil {
		return nil, err
	}
	c, err := s.ctr(ctr)
	if err != nil {
		return nil, err
	}
	return c.proc(proc)
}

// got returns what the container was asked, under its lock.
func (c *fakeContainer) got() (cfg sandbox.ContainerConfig, execs []sandbox.ProcessConfig, kills []syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg, append([]sandbox.ProcessConfig(nil), c.execs...), append([]syscall.Signal(nil), c.kills...)
}
