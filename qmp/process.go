package qmp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// killWait bounds how long Kill waits for QEMU to go after SIGKILL.
const killWait = 30 * time.Second

// Process is a running QEMU, started by Start or found by Attach. It is
// watched through a pidfd, which works whether or not QEMU is our child and
// cannot be fooled by pid reuse.
type Process struct {
	Pid int

	cmd   *exec.Cmd // nil when attached: someone else reaps it
	pidfd *os.File  // non-blocking, so the Go netpoller waits on it
	done  chan struct{}
	// watching is closed when the watcher goroutine returns.
	watching chan struct{}

	mu       sync.Mutex
	released bool
	exitErr  error // what Wait said, for children only
}

// newProcess watches pid through pidfd (opened with PIDFD_NONBLOCK). cmd is
// set when pid is our child, so the watcher also reaps it.
func newProcess(pid, pidfd int, cmd *exec.Cmd) *Process {
	p := &Process{
		Pid:      pid,
		cmd:      cmd,
		pidfd:    os.NewFile(uintptr(pidfd), "pidfd:"+strconv.Itoa(pid)),
		done:     make(chan struct{}),
		watching: make(chan struct{}),
	}
	go p.watch()
	return p
}

func (p *Process) watch() {
	defer close(p.watching)
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd turns readable when the process exits; Read parks on the
	// netpoller until then, and returns an error once Release closes it.
	if err := rc.Read(func(fd uintptr) bool { return pidfdExited(int(fd)) }); err != nil {
		return
	}
	if p.cmd != nil {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
	}
	close(p.done)
}

// pidfdExited polls a pidfd without blocking.
func pidfdExited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0
	}
}

// Done is closed when QEMU has exited (and, if it is our child, been reaped).
// After Release it never closes.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError is what waiting for QEMU returned (nil for a clean exit), once
// Done is closed. It is always nil for an attached process, whose exit
// status belongs to its parent.
func (p *Process) ExitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Kill sends SIGKILL and waits until QEMU is gone. Killing a process that
// has already exited is not an error.
func (p *Process) Kill() error {
	p.mu.Lock()
	released := p.released
	p.mu.Unlock()
	if released {
		return fmt.Errorf("kill qemu pid %d: %w", p.Pid, ErrReleased)
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return fmt.Errorf("kill qemu pid %d: %w", p.Pid, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0)
	}); err != nil {
		return fmt.Errorf("kill qemu pid %d: %w", p.Pid, err)
	}
	if serr != nil && serr != unix.ESRCH { // ESRCH: exited already, not yet seen
		return fmt.Errorf("kill qemu pid %d: %w", p.Pid, serr)
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("qemu pid %d still there %v after SIGKILL", p.Pid, killWait)
	}
}

// Release stops watching QEMU and frees the pidfd, leaving QEMU running (a
// daemon going away while its sandboxes live on). A released child that
// exits later stays a zombie until this daemon exits.
func (p *Process) Release() {
	p.mu.Lock()
	if p.released {
		p.mu.Unlock()
		return
	}
	p.released = true
	p.mu.Unlock()
	p.pidfd.Close() // wakes the watcher
	<-p.watching
	if p.cmd != nil && p.cmd.Process != nil {
		// Still our child: reap it whenever it exits, so a VM released
		// and then deleted by this same daemon leaves no zombie.
		go p.cmd.Wait()
	}
}

// Attach finds a QEMU started earlier (by a daemon that has since
// restarted): pid must be a live qemu whose -name is guest=name.
func Attach(pid int, name string) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("%w: attach: pid %d", ErrInvalid, pid)
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == unix.ESRCH {
		return nil, fmt.Errorf("attach to qemu %q: pid %d: %w", name, pid, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("attach to qemu %q: pidfd_open %d: %w", name, pid, err)
	}
	if err := checkQEMU(pid, name); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The pidfd was opened before the cmdline was read: if that process
	// is still alive now, the cmdline we read was its own, not that of a
	// process that reused the pid.
	if pidfdExited(fd) {
		unix.Close(fd)
		return nil, fmt.Errorf("attach to qemu %q: pid %d exited: %w", name, pid, ErrNotFound)
	}
	return newProcess(pid, fd, nil), nil
}

// checkQEMU tells whether /proc/PID/cmdline is a qemu run with -name guest=NAME.
func checkQEMU(pid int, name string) error {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("attach to qemu %q: pid %d: %w", name, pid, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("attach to qemu %q: %w", name, err)
	}
	argv := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	if len(raw) == 0 || !strings.Contains(filepath.Base(argv[0]), "qemu") {
		return fmt.Errorf("attach to qemu %q: pid %d is %q, not qemu: %w", name, pid, argv[0], ErrMismatch)
	}
	got, ok := guestName(argv)
	if !ok {
		return fmt.Errorf("attach to qemu %q: pid %d has no -name: %w", name, pid, ErrMismatch)
	}
	if got != name {
		return fmt.Errorf("attach to qemu %q: pid %d runs guest %q: %w", name, pid, got, ErrMismatch)
	}
	return nil
}

// guestName extracts the guest name from a QEMU argv ("-name guest=N,..."
// or the legacy "-name N,...").
func guestName(argv []string) (string, bool) {
	for i := 1; i+1 < len(argv); i++ {
		if argv[i] != "-name" && argv[i] != "--name" {
			continue
		}
		for j, opt := range strings.Split(argv[i+1], ",") {
			if v, ok := strings.CutPrefix(opt, "guest="); ok {
				return v, true
			}
			if j == 0 && !strings.Contains(opt, "=") {
				return opt, true
			}
		}
	}
	return "", false
}
