package qmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Names of the default start-up steps.
const (
	StepValidate      = "validate"
	StepPrepareRunDir = "prepare-rundir"
	StepExec          = "exec"
	StepWaitQMP       = "wait-qmp"
)

// defaultStartTimeout bounds the wait for the QMP socket when the caller's
// context has no deadline.
const defaultStartTimeout = 30 * time.Second

// Launch is the state the start-up steps share.
type Launch struct {
	Config  Config   // with defaults applied by the validate step
	Log     *os.File // RunDir/qemu.log, QEMU's stdout and stderr
	Cmd     *exec.Cmd
	Process *Process
}

// StartStep is one named step of Start, in the manner of
// firecracker-go-sdk's handler lists.
type StartStep struct {
	Name string
	Run  func(ctx context.Context, l *Launch) error
}

// StartSteps is an ordered list of steps. Its methods return modified
// copies, so a test can change its own list without touching the default.
type StartSteps []StartStep

// DefaultStartSteps is the sequence Start runs.
func DefaultStartSteps() StartSteps {
	return StartSteps{
		{StepValidate, validateStep},
		{StepPrepareRunDir, prepareRunDirStep},
		{StepExec, execStep},
		{StepWaitQMP, waitQMPStep},
	}
}

// Replace returns the list with the step called name running fn instead.
func (s StartSteps) Replace(name string, fn func(ctx context.Context, l *Launch) error) StartSteps {
	out := append(StartSteps(nil), s...)
	for i := range out {
		if out[i].Name == name {
			out[i].Run = fn
		}
	}
	return out
}

// Remove returns the list without the step called name.
func (s StartSteps) Remove(name string) StartSteps {
	var out StartSteps
	for _, st := range s {
		if st.Name != name {
			out = append(out, st)
		}
	}
	return out
}

// InsertBefore returns the list with st placed before the step called name
// (at the end if there is none).
func (s StartSteps) InsertBefore(name string, st StartStep) StartSteps {
	out := make(StartSteps, 0, len(s)+1)
	placed := false
	for _, cur := range s {
		if cur.Name == name && !placed {
			out = append(out, st)
			placed = true
		}
		out = append(out, cur)
	}
	if !placed {
		out = append(out, st)
	}
	return out
}

// Start launches QEMU for cfg and returns once its QMP socket accepts
// connections. QEMU runs in its own session, so it outlives ctx and this
// daemon. On any failure whatever was started is killed and reaped.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	return StartWithSteps(ctx, cfg, DefaultStartSteps())
}

// StartWithSteps is Start with an explicit list of steps.
func StartWithSteps(ctx context.Context, cfg Config, steps StartSteps) (*Process, error) {
	l := &Launch{Config: cfg}
	defer func() {
		if l.Log != nil {
			l.Log.Close() // QEMU holds its own copy
		}
	}()
	for _, st := range steps {
		if err := st.Run(ctx, l); err != nil {
			l.abort()
			return nil, fmt.Errorf("start qemu %q: step %s: %w", cfg.Name, st.Name, err)
		}
	}
	if l.Process == nil {
		l.abort()
		return nil, fmt.Errorf("start qemu %q: no step started a process", cfg.Name)
	}
	return l.Process, nil
}

// abort kills and reaps whatever the steps started.
func (l *Launch) abort() {
	switch {
	case l.Process != nil:
		l.Process.Kill()
	case l.Cmd != nil && l.Cmd.Process != nil:
		l.Cmd.Process.Kill()
		l.Cmd.Wait()
	}
}

func validateStep(_ context.Context, l *Launch) error {
	l.Config = l.Config.withDefaults()
	return l.Config.Validate()
}

// prepareRunDirStep creates the run directory, refuses one a live QEMU
// still uses, clears what a dead one left, and opens qemu.log.
func prepareRunDirStep(_ context.Context, l *Launch) error {
	c := l.Config
	if err := os.MkdirAll(c.RunDir, 0o750); err != nil {
		return err
	}
	if b, err := os.ReadFile(c.PidFile()); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			if err := checkQEMU(pid, c.Name); err == nil {
				return fmt.Errorf("%w: qemu pid %d still runs in %s", ErrBusy, pid, c.RunDir)
			}
		}
	}
	// A stale socket would let the wait step talk to nothing (or worse,
	// to an unrelated listener); QEMU makes fresh ones.
	for _, p := range []string{c.QMPSocket(), c.AgentSocket(), c.PidFile()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	f, err := os.OpenFile(c.LogFile(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	l.Log = f
	return nil
}

// execStep starts QEMU in a session of its own, so that neither a signal to
// the daemon's process group nor the daemon's exit reaches it.
func execStep(_ context.Context, l *Launch) error {
	c := l.Config
	cmd := exec.Command(c.Binary, c.Args()...)
	cmd.Stdout, cmd.Stderr = l.Log, l.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	l.Cmd = cmd
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	l.Process = newProcess(cmd.Process.Pid, fd, cmd)
	return nil
}

// waitQMPStep polls until the QMP socket accepts a connection, QEMU exits
// (the error then carries the end of qemu.log) or ctx ends.
func waitQMPStep(ctx context.Context, l *Launch) error {
	if l.Process == nil {
		return errors.New("no process to wait for")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	sock := l.Config.QMPSocket()
	delay := time.Millisecond
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", sock)
		if err == nil {
			c.Close()
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-l.Process.Done():
			t.Stop()
			return fmt.Errorf("qemu exited during start-up (%v): %s",
				l.Process.ExitError(), LogTail(l.Config.LogFile(), 20))
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w (qemu.log: %s)", sock, ctx.Err(), LogTail(l.Config.LogFile(), 5))
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

// LogTail returns the last n lines of a log file, joined by " | ", or a
// note that it is empty or unreadable.
func LogTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	const max = 8 << 10
	var off int64
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		off = fi.Size() - max
	}
	buf := make([]byte, max)
	k, _ := f.ReadAt(buf, off)
	lines := strings.Split(strings.TrimRight(string(buf[:k]), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, " | ")
	if strings.TrimSpace(s) == "" {
		return "(empty log)"
	}
	return s
}
