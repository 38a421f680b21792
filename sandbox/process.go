package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/relay"
)

// vmGoneWait is how long a waiter whose session broke waits to learn
// whether the VM died (then the process was killed with it).
const vmGoneWait = 3 * time.Second

// Process is one process of a container: its output spools, its stdin,
// its exit. Its output is drained into the spools from the moment it
// exists, whether anyone reads or not.
type Process struct {
	c   *Container
	id  string
	tty bool

	stdout, stderr *relay.Spool
	stdin          *relay.Stdin

	mu         sync.Mutex
	pid        int
	rows, cols uint16
	exit       *ExitStatus
	exited     chan struct{} // closed once exit is set and output drained
}

func (c *Container) newProcess(id string, tty bool) (*Process, error) {
	dir := c.spoolDir(id)
	out, err := relay.OpenSpool(filepath.Join(dir, "stdout"), c.sb.m.opts.SpoolLimit)
	if err != nil {
		return nil, err
	}
	errs, err := relay.OpenSpool(filepath.Join(dir, "stderr"), c.sb.m.opts.SpoolLimit)
	if err != nil {
		out.Remove()
		return nil, err
	}
	return &Process{c: c, id: id, tty: tty, stdout: out, stderr: errs, exited: make(chan struct{})}, nil
}

// attach opens the process's output streams and starts draining them,
// and prepares stdin to be opened on its first writer.
func (p *Process) attach(ctx context.Context, cl *agent.Client) error {
	conn, err := cl.OpenStdio(ctx, p.c.cfg.ID, p.id, agent.StdioStdout)
	if err != nil {
		return agentErr("stdout of "+p.id, err)
	}
	go p.drain(p.stdout, conn)
	if p.tty {
		p.stderr.MarkDone() // a tty merges stderr into stdout
	} else {
		conn, err := cl.OpenStdio(ctx, p.c.cfg.ID, p.id, agent.StdioStderr)
		if err != nil {
			return agentErr("stderr of "+p.id, err)
		}
		go p.drain(p.stderr, conn)
	}
	p.stdin = relay.NewStdin(&lazyStdin{open: func() (net.Conn, error) {
		return cl.OpenStdio(context.Background(), p.c.cfg.ID, p.id, agent.StdioStdin)
	}, closeStdin: func() error {
		return cl.CloseStdin(context.Background(), p.c.cfg.ID, p.id)
	}})
	return nil
}

func (p *Process) drain(sp *relay.Spool, conn net.Conn) {
	defer conn.Close()
	if err := sp.Fill(conn); err != nil {
		p.c.log.WithField("proc", p.id).WithError(err).Warn("output stream ended with an error")
	}
}

// started records the guest pid and waits for the exit in the background;
// onExit runs once it ended and its output is drained.
func (p *Process) started(cl *agent.Client, pid int, onExit func()) {
	p.mu.Lock()
	p.pid = pid
	p.mu.Unlock()
	go func() {
		es, err := cl.WaitProcess(context.Background(), p.c.cfg.ID, p.id)
		if err != nil && !p.c.sb.hasContainer(p.c) {
			// Released, stopped or deleted: the session was closed on
			// purpose and the process may well live on (a restarted daemon
			// waits for it again). Nothing here is ours to record.
			return
		}
		if err != nil {
			// The session is gone. If the VM went with it (QEMU died), the
			// process was killed with it; else its status is unknown.
			es = agent.ExitStatus{Code: -1}
			select {
			case <-p.c.sb.Done():
				es = agent.ExitStatus{Code: 128 + int(syscall.SIGKILL), Signal: "KILL"}
			case <-time.After(vmGoneWait):
				p.c.log.WithField("proc", p.id).WithError(err).Warn("lost the process's exit status")
			}
		}
		// Exit status never overtakes output: wait for both spools.
		p.stdout.Wait(context.Background())
		p.stderr.Wait(context.Background())
		// The container's state moves before anyone waiting learns of
		// the exit, so `cat wait && echo delete > ctl` finds it stopped.
		if onExit != nil {
			onExit()
		}
		if p.stdin != nil {
			p.stdin.Close()
		}
		p.mu.Lock()
		if p.exit == nil { // finish may have come first (the VM died)
			e := ExitStatus(es)
			p.exit = &e
			close(p.exited)
		}
		p.mu.Unlock()
		p.c.persist()
	}()
}

// ID is the process's name (init for the container's first process).
func (p *Process) ID() string { return p.id }

func (p *Process) status() ProcessStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := ProcessStatus{ID: p.id, State: "running", Pid: p.pid, TTY: p.tty,
		StdoutBytes: p.stdout.Size(), StderrBytes: p.stderr.Size(),
		StdoutDropped: p.stdout.Dropped(), StderrDropped: p.stderr.Dropped()}
	switch {
	case p.exit != nil:
		st.State, st.Exit = "exited", p.exit.String()
	case p.pid == 0:
		st.State = "created"
	}
	return st
}

// Status is the process's status file.
func (p *Process) Status(ctx context.Context) (ProcessStatus, error) { return p.status(), nil }

// Stdout is the process's output (with a tty, the terminal's).
func (p *Process) Stdout() *relay.Spool { return p.stdout }

// Stderr is the process's error output; nil with a tty.
func (p *Process) Stderr() *relay.Spool {
	if p.tty {
		return nil
	}
	return p.stderr
}

// OpenStdin notes a writer of the stdin file.
func (p *Process) OpenStdin() { p.stdin.Open() }

// WriteStdin sends bytes to the process, in order.
func (p *Process) WriteStdin(ctx context.Context, b []byte) (int, error) {
	n, err := p.stdin.Write(ctx, b)
	switch {
	case err == nil || ctx.Err() != nil:
		return n, err
	case errors.Is(err, relay.ErrClosed) || p.exitStatus() != nil:
		// EPIPE, as a pipe to a process that is gone.
		return n, fmt.Errorf("stdin of %s: the process has ended or its stdin was closed: %w", p.id, io.ErrClosedPipe)
	}
	return n, fmt.Errorf("%w: stdin of %s: %v", ErrVM, p.id, err)
}

// ReleaseStdin notes a writer closing; the last one gives the process EOF.
func (p *Process) ReleaseStdin() error { return p.stdin.Release() }

// Signal is SignalProcess.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	if p.exitStatus() != nil {
		return fmt.Errorf("%w: process %s has exited", ErrBusy, p.id)
	}
	cl, err := p.c.sb.agentClient("signal a process")
	if err != nil {
		return err
	}
	return agentErr("signal "+p.id, cl.SignalProcess(ctx, p.c.cfg.ID, p.id, sig))
}

// Resize is WinsizeProcess.
func (p *Process) Resize(ctx context.Context, rows, cols uint16) error {
	if !p.tty {
		return fmt.Errorf("%w: process %s has no tty", ErrInvalid, p.id)
	}
	cl, err := p.c.sb.agentClient("resize a tty")
	if err != nil {
		return err
	}
	if err := cl.ResizeTTY(ctx, p.c.cfg.ID, p.id, rows, cols); err != nil {
		return agentErr("resize "+p.id, err)
	}
	p.mu.Lock()
	p.rows, p.cols = rows, cols
	p.mu.Unlock()
	p.c.persist()
	return nil
}

// Winsize is the size last set.
func (p *Process) Winsize() (rows, cols uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rows, p.cols
}

func (p *Process) exitStatus() *ExitStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// Wait is WaitProcess: it returns once the process ended and its output is
// fully in the spools.
func (p *Process) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-p.exited:
		return *p.exitStatus(), nil
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// remove closes the process's streams and deletes its spools.
func (p *Process) remove() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	p.stdout.Remove()
	p.stderr.Remove()
	os.Remove(filepath.Dir(p.stdout.Path()))
}

// Processes lists the container's process IDs, init included.
func (c *Container) Processes(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedKeys(c.procs), nil
}

// Process finds one process of the container.
func (c *Container) Process(ctx context.Context, id string) (*Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[id]
	if p == nil {
		return nil, fmt.Errorf("%w: process %s in container %s", ErrNotFound, id, c.cfg.ID)
	}
	return p, nil
}

// Exec is EnterContainer: a new process in the running container. It
// returns once the process runs.
func (c *Container) Exec(ctx context.Context, cfg ProcessConfig) error {
	if err := ValidID(cfg.ID); err != nil {
		return err
	}
	proc, err := processSpec(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[cfg.ID] != nil {
		return fmt.Errorf("%w: process %s", ErrExists, cfg.ID)
	}
	if c.state != StateRunning {
		return fmt.Errorf("%w: cannot exec in container %s: it is %s (want running)", ErrBusy, c.cfg.ID, c.state)
	}
	cl, err := c.sb.agentClient("exec a process")
	if err != nil {
		return err
	}
	p, err := c.newProcess(cfg.ID, proc.Terminal)
	if err != nil {
		return err
	}
	pid, err := cl.ExecProcess(ctx, c.cfg.ID, cfg.ID, proc, proc.Terminal)
	if err != nil {
		p.remove()
		return agentErr("exec "+cfg.ID, err)
	}
	if err := p.attach(ctx, cl); err != nil {
		cl.SignalProcess(context.Background(), c.cfg.ID, cfg.ID, syscall.SIGKILL)
		p.remove()
		return err
	}
	p.started(cl, pid, nil)
	c.procs[cfg.ID] = p
	c.save()
	c.log.WithFields(map[string]any{"proc": cfg.ID, "pid": pid}).Info("process started")
	return nil
}

// processSpec builds the OCI process from the words, or takes the JSON.
func processSpec(cfg ProcessConfig) (*specs.Process, error) {
	if len(cfg.JSON) > 0 {
		var p specs.Process
		if err := jsonUnmarshalStrict(cfg.JSON, &p); err != nil {
			return nil, fmt.Errorf("%w: process JSON: %v", ErrInvalid, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("%w: process JSON has no args", ErrInvalid)
		}
		if p.Cwd == "" {
			p.Cwd = "/"
		}
		return &p, nil
	}
	if len(cfg.Args) == 0 {
		return nil, fmt.Errorf("%w: exec %s: no command given (exec PID -- ARG...)", ErrInvalid, cfg.ID)
	}
	p := &specs.Process{Terminal: cfg.TTY, Args: cfg.Args, Cwd: cfg.Cwd,
		Env: append([]string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root", "TERM=xterm"}, cfg.Env...)}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if cfg.UID != nil {
		p.User.UID = *cfg.UID
	}
	if cfg.GID != nil {
		p.User.GID = *cfg.GID
	}
	return p, nil
}

// lazyStdin opens the stdin stream on the first write, so a process whose
// stdin nobody writes keeps it open rather than seeing EOF at once.
type lazyStdin struct {
	open       func() (net.Conn, error)
	closeStdin func() error

	mu       sync.Mutex
	conn     net.Conn
	deadline time.Time
}

func (l *lazyStdin) Write(b []byte) (int, error) {
	l.mu.Lock()
	if l.conn == nil {
		c, err := l.open()
		if err != nil {
			l.mu.Unlock()
			return 0, err
		}
		c.SetWriteDeadline(l.deadline)
		l.conn = c
	}
	c := l.conn
	l.mu.Unlock()
	return c.Write(b)
}

// SetWriteDeadline lets relay.Stdin cut a write the process is not
// reading when the writer is interrupted; it holds until the stream opens.
func (l *lazyStdin) SetWriteDeadline(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deadline = t
	if l.conn != nil {
		return l.conn.SetWriteDeadline(t)
	}
	return nil
}

// Close gives the process EOF: by closing the stream, or by CloseStdin
// when nothing was ever written.
func (l *lazyStdin) Close() error {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	if err := l.closeStdin(); err != nil && !errors.Is(agentErr("", err), ErrNotFound) {
		return err
	}
	return nil
}
