package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RuntimeConfig is where Runtime finds what it needs in the guest.
type RuntimeConfig struct {
	// StateDir holds one directory per container (the default root's
	// mount point); default /run/katafs/c.
	StateDir string
	// Busybox is the guest's busybox, bind-mounted into default roots;
	// default /bin/busybox.
	Busybox string
	// Self is the agent binary, re-executed as each container's exec
	// server; default /proc/self/exe. Its main must call
	// RunContainerInit when IsContainerInit.
	Self string
	// Spawn forks a child and registers it for its exit status, as
	// Reaper.Spawn does; nil waits for the child itself (no reaper runs).
	Spawn func(start func() (int, error)) (<-chan unix.WaitStatus, error)
	// Ready blocks until the kernel modules a root on a block device
	// needs (overlay) are loaded; nil: loaded.
	Ready func(ctx context.Context) error
}

// Runtime runs the guest's containers. Each is a tree of processes under
// an exec server (execserver_linux.go) in its own namespaces.
//
// Lock: Runtime.mu guards the containers map and every field of container
// and process marked "mu"; it is never held across a call to the exec
// server or a blocking I/O.
type Runtime struct {
	cfg RuntimeConfig

	mu         sync.Mutex
	containers map[string]*container
}

var _ ContainerRuntime = (*Runtime)(nil)

// NewRuntime returns a Runtime.
func NewRuntime(cfg RuntimeConfig) *Runtime {
	if cfg.StateDir == "" {
		cfg.StateDir = "/run/katafs/c"
	}
	if cfg.Busybox == "" {
		cfg.Busybox = "/bin/busybox"
	}
	if cfg.Self == "" {
		cfg.Self = "/proc/self/exe"
	}
	return &Runtime{cfg: cfg, containers: map[string]*container{}}
}

type containerState int

const (
	stateCreating containerState = iota
	stateCreated
	stateStarting
	stateRunning
	stateStopped
)

type container struct {
	id       string
	spec     *specs.Spec
	srv      *msgConn
	srvPid   int
	srvExit  <-chan unix.WaitStatus
	readDone chan struct{} // closed when the server's socket is gone

	// mu
	state   containerState
	paused  bool
	procs   map[string]*process
	seq     int
	pending map[int]chan *execMsg
}

type process struct {
	id    string
	tty   bool
	child []*os.File // the process's ends, closed once it runs
	pty   *os.File   // tty master (for the size)
	stdin *stdinSink
	out   *outPump
	err   *outPump

	exited chan struct{} // closed after status is set
	status ExitStatus

	// mu
	pid     int
	started bool
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *process) setExit(st ExitStatus) {
	if p.hasExited() {
		return
	}
	p.status = st
	close(p.exited)
}

// release drops the agent's ends of the process's stdio.
func (p *process) release() {
	closeFiles(p.child)
	p.child = nil
	p.stdin.close()
	p.out.stop()
	p.err.stop()
}

// newProcess makes the stdio of a process: pipes, or a pty whose slave
// is stdin, stdout and stderr.
func newProcess(id string, tty bool) (*process, error) {
	p := &process{id: id, tty: tty, exited: make(chan struct{})}
	if tty {
		master, slave, err := openPty()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "pty: %v", err)
		}
		wfd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			master.Close()
			slave.Close()
			return nil, status.Errorf(codes.Internal, "dup pty: %v", err)
		}
		unix.SetNonblock(wfd, true)
		p.pty = os.NewFile(uintptr(wfd), "ptmx")
		p.child = []*os.File{slave}
		p.stdin = newStdinSink(p.pty, true)
		p.out = newOutPump(master)
		p.err = finishedPump()
		return p, nil
	}
	var fs [6]*os.File // inR inW outR outW errR errW
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(fs[:])
			return nil, status.Errorf(codes.Internal, "pipe: %v", err)
		}
		fs[i], fs[i+1] = r, w
	}
	for _, f := range []*os.File{fs[2], fs[4]} {
		// A big pipe: the writer runs on while the pump waits for the port.
		unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	}
	p.child = []*os.File{fs[0], fs[3], fs[5]}
	p.stdin = newStdinSink(fs[1], false)
	p.out = newOutPump(fs[2])
	p.err = newOutPump(fs[4])
	return p, nil
}

// openPty opens a new pty pair; the slave comes from the master
// (TIOCGPTPEER), so no path in any mount namespace matters.
func openPty() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		fd, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, nil, err
		}
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("TIOCGPTPEER: %w", errno)
	}
	return os.NewFile(uintptr(fd), "ptmx"), os.NewFile(sfd, "pts"), nil
}

func (r *Runtime) lookup(cid string) (*container, error) {
	c, ok := r.containers[cid]
	if !ok || c.state == stateCreating {
		return nil, status.Errorf(codes.NotFound, "no container %s", cid)
	}
	return c, nil
}

func (r *Runtime) lookupProc(cid, execID string) (*container, *process, error) {
	c, err := r.lookup(cid)
	if err != nil {
		return nil, nil, err
	}
	p, ok := c.procs[execID]
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "no process %s in container %s", execID, cid)
	}
	return c, p, nil
}

// CreateContainer implements ContainerRuntime.
func (r *Runtime) CreateContainer(ctx context.Context, id string, spec *specs.Spec, tty bool) error {
	if err := checkID("container", id); err != nil {
		return err
	}
	if spec == nil || spec.Process == nil || len(spec.Process.Args) == 0 {
		return status.Error(codes.InvalidArgument, "spec has no process args")
	}
	root, defaultRoot, device := "", spec.Root == nil || spec.Root.Path == "", ""
	switch {
	case defaultRoot:
		root = filepath.Join(r.cfg.StateDir, id, "root")
	case strings.HasPrefix(spec.Root.Path, "/dev/"):
		device = filepath.Clean(spec.Root.Path)
		if fi, err := os.Stat(device); err != nil || fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
			return status.Errorf(codes.InvalidArgument, "root %s is not a block device in the guest", spec.Root.Path)
		}
		// The exec server mounts its overlay under here.
		root = filepath.Join(r.cfg.StateDir, id)
	default:
		root = spec.Root.Path
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return status.Errorf(codes.InvalidArgument, "root %s is not a directory in the guest", root)
		}
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = id
	}
	if len(hostname) > hostNameMax {
		return status.Errorf(codes.InvalidArgument, "hostname of %d bytes, at most %d", len(hostname), hostNameMax)
	}
	c := &container{id: id, spec: spec, procs: map[string]*process{}, pending: map[int]chan *execMsg{}, readDone: make(chan struct{})}
	r.mu.Lock()
	if _, ok := r.containers[id]; ok {
		r.mu.Unlock()
		return status.Errorf(codes.AlreadyExists, "container %s exists", id)
	}
	r.containers[id] = c
	r.mu.Unlock()

	err := r.create(ctx, c, &execSetup{ContainerID: id, Root: root, DefaultRoot: defaultRoot, Device: device, Busybox: r.cfg.Busybox, Hostname: hostname}, tty)
	r.mu.Lock()
	if err != nil {
		delete(r.containers, id)
	} else {
		c.state = stateCreated
	}
	r.mu.Unlock()
	if err != nil {
		r.teardown(c)
		return err
	}
	logrus.WithField("container", id).Debug("agent: container created")
	return nil
}

func (r *Runtime) create(ctx context.Context, c *container, setup *execSetup, tty bool) error {
	if setup.Device != "" && r.cfg.Ready != nil {
		if err := r.cfg.Ready(ctx); err != nil {
			return status.Errorf(status.FromContextError(err).Code(), "modules for an image root: %v", err)
		}
	}
	if setup.DefaultRoot || setup.Device != "" {
		if err := os.MkdirAll(setup.Root, 0o755); err != nil {
			return status.Errorf(codes.Internal, "state dir: %v", err)
		}
	}
	if err := r.startServer(c); err != nil {
		return status.Errorf(codes.Internal, "start exec server: %v", err)
	}
	if _, err := r.call(ctx, c, &execMsg{Op: opSetup, Setup: setup}); err != nil {
		return err
	}
	p, err := newProcess(initExecID, tty)
	if err != nil {
		return err
	}
	r.mu.Lock()
	c.procs[initExecID] = p
	r.mu.Unlock()
	return nil
}

// startServer starts the exec server of c in new namespaces.
func (r *Runtime) startServer(c *container) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours := os.NewFile(uintptr(fds[0]), "exec-server")
	theirs := os.NewFile(uintptr(fds[1]), "agent")
	defer theirs.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		ours.Close()
		return err
	}
	defer null.Close()
	attr := &syscall.ProcAttr{
		Env:   []string{containerInitEnv + "=1", "PATH=/bin:/sbin:/usr/bin:/usr/sbin"},
		Files: []uintptr{null.Fd(), os.Stderr.Fd(), os.Stderr.Fd(), theirs.Fd()},
		Sys: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	start := func() (int, error) {
		return syscall.ForkExec(r.cfg.Self, []string{"katafs-container-init", c.id}, attr)
	}
	var pid int
	spawn := r.cfg.Spawn
	if spawn == nil {
		spawn = waitItself
	}
	exited, err := spawn(func() (int, error) {
		p, err := start()
		pid = p
		return p, err
	})
	if err != nil {
		ours.Close()
		return err
	}
	c.srv, c.srvPid, c.srvExit = newMsgConn(ours), pid, exited
	go r.readServer(c)
	return nil
}

// waitItself is Spawn where no reaper runs: it waits for the child.
func waitItself(start func() (int, error)) (<-chan unix.WaitStatus, error) {
	pid, err := start()
	if err != nil {
		return nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		ch <- ws
	}()
	return ch, nil
}

// readServer takes the exec server's replies and exit events until its
// socket closes; then every process still running counts as killed.
func (r *Runtime) readServer(c *container) {
	defer close(c.readDone)
	for {
		m, files, err := c.srv.recv()
		closeFiles(files)
		if err != nil {
			break
		}
		switch m.Op {
		case opReply:
			r.mu.Lock()
			ch := c.pending[m.Seq]
			delete(c.pending, m.Seq)
			r.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case opExit:
			r.exited(c, m.ID, exitStatusOf(unix.WaitStatus(m.Status)))
		}
	}
	r.mu.Lock()
	procs := make([]*process, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	r.mu.Unlock()
	for _, p := range procs {
		r.exited(c, p.id, ExitStatus{Code: 128 + int(unix.SIGKILL), Signal: "KILL"})
	}
}

func (r *Runtime) exited(c *container, id string, st ExitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := c.procs[id]
	if p == nil || p.hasExited() {
		return
	}
	p.setExit(st)
	if id == initExecID {
		c.state = stateStopped
	}
	logrus.WithFields(logrus.Fields{"container": c.id, "proc": id, "status": st}).Debug("agent: process exited")
}

// call sends m to c's exec server and waits for its reply.
func (r *Runtime) call(ctx context.Context, c *container, m *execMsg, fds ...int) (*execMsg, error) {
	ch := make(chan *execMsg, 1)
	r.mu.Lock()
	c.seq++
	m.Seq = c.seq
	c.pending[m.Seq] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(c.pending, m.Seq)
		r.mu.Unlock()
	}()
	if err := c.srv.send(m, fds...); err != nil {
		return nil, status.Errorf(codes.Internal, "exec server of %s: %v", c.id, err)
	}
	select {
	case rep := <-ch:
		if rep.Err != "" {
			return rep, status.Error(codes.Code(rep.Code), rep.Err)
		}
		return rep, nil
	case <-c.readDone:
		return nil, status.Errorf(codes.Internal, "exec server of %s is gone", c.id)
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// run starts process p in c with the exec server.
func (r *Runtime) run(ctx context.Context, c *container, p *process, spec *specs.Process) (int, error) {
	fds := make([]int, len(p.child))
	for i, f := range p.child {
		fds[i] = int(f.Fd())
	}
	rep, err := r.call(ctx, c, &execMsg{Op: opExec, ID: p.id, Process: spec, TTY: p.tty}, fds...)
	// The server has its own copies now (or failed): the pipes' ends must
	// close here so that EOF reaches the pumps.
	closeFiles(p.child)
	p.child = nil
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	p.pid, p.started = rep.Pid, true
	r.mu.Unlock()
	return rep.Pid, nil
}

// StartContainer implements ContainerRuntime.
func (r *Runtime) StartContainer(ctx context.Context, id string) (int, error) {
	r.mu.Lock()
	c, err := r.lookup(id)
	if err == nil && c.state != stateCreated {
		err = status.Errorf(codes.FailedPrecondition, "container %s is not created but %s", id, c.stateName())
	}
	var p *process
	if err == nil {
		c.state = stateStarting
		p = c.procs[initExecID]
	}
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	pid, err := r.run(ctx, c, p, c.spec.Process)
	r.mu.Lock()
	if err != nil {
		// Init cannot start: the container is over.
		c.state = stateStopped
		p.setExit(ExitStatus{Code: 127})
	} else if c.state == stateStarting {
		c.state = stateRunning
	}
	r.mu.Unlock()
	return pid, err
}

func (c *container) stateName() string {
	switch c.state {
	case stateCreated:
		return "created"
	case stateStarting:
		return "starting"
	case stateRunning:
		if c.paused {
			return "paused"
		}
		return "running"
	case stateStopped:
		return "stopped"
	}
	return "creating"
}

// ExecProcess implements ContainerRuntime.
func (r *Runtime) ExecProcess(ctx context.Context, cid, execID string, spec *specs.Process, tty bool) (int, error) {
	if err := checkID("exec", execID); err != nil {
		return 0, err
	}
	if spec == nil || len(spec.Args) == 0 {
		return 0, status.Error(codes.InvalidArgument, "empty argv")
	}
	p, err := newProcess(execID, tty)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	c, err := r.lookup(cid)
	if err == nil && c.state != stateRunning {
		err = status.Errorf(codes.FailedPrecondition, "container %s is %s, not running", cid, c.stateName())
	}
	if err == nil {
		if _, dup := c.procs[execID]; dup {
			err = status.Errorf(codes.AlreadyExists, "process %s exists in %s", execID, cid)
		}
	}
	if err == nil {
		c.procs[execID] = p
	}
	r.mu.Unlock()
	if err != nil {
		p.release()
		return 0, err
	}
	pid, err := r.run(ctx, c, p, spec)
	if err != nil {
		r.mu.Lock()
		delete(c.procs, execID)
		r.mu.Unlock()
		p.release()
		return 0, err
	}
	return pid, nil
}

// WaitProcess implements ContainerRuntime.
func (r *Runtime) WaitProcess(ctx context.Context, cid, execID string) (ExitStatus, error) {
	r.mu.Lock()
	_, p, err := r.lookupProc(cid, execID)
	r.mu.Unlock()
	if err != nil {
		return ExitStatus{}, err
	}
	select {
	case <-p.exited:
		return p.status, nil
	case <-ctx.Done():
		return ExitStatus{}, status.FromContextError(ctx.Err()).Err()
	}
}

// runningProc finds a process that runs now.
func (r *Runtime) runningProc(cid, execID string) (*container, *process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, p, err := r.lookupProc(cid, execID)
	if err != nil {
		return nil, nil, err
	}
	if !p.started || p.hasExited() {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "process %s of %s is not running", execID, cid)
	}
	return c, p, nil
}

// SignalProcess implements ContainerRuntime.
func (r *Runtime) SignalProcess(ctx context.Context, cid, execID string, sig syscall.Signal) error {
	if sig <= 0 || sig > 64 {
		return status.Errorf(codes.InvalidArgument, "bad signal %d", sig)
	}
	c, _, err := r.runningProc(cid, execID)
	if err != nil {
		return err
	}
	_, err = r.call(ctx, c, &execMsg{Op: opSignal, ID: execID, Signal: int(sig)})
	return err
}

// ResizeTTY implements ContainerRuntime.
func (r *Runtime) ResizeTTY(ctx context.Context, cid, execID string, rows, cols uint16) error {
	r.mu.Lock()
	_, p, err := r.lookupProc(cid, execID)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if !p.tty {
		return status.Errorf(codes.FailedPrecondition, "process %s of %s has no tty", execID, cid)
	}
	if err := unix.IoctlSetWinsize(int(p.pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		return status.Errorf(codes.Internal, "TIOCSWINSZ: %v", err)
	}
	return nil
}

// CloseStdin implements ContainerRuntime.
func (r *Runtime) CloseStdin(ctx context.Context, cid, execID string) error {
	r.mu.Lock()
	_, p, err := r.lookupProc(cid, execID)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	p.stdin.close()
	return nil
}

// PauseContainer implements ContainerRuntime. Every process of the
// container gets SIGSTOP from the exec server (kill(-1) in its pid
// namespace), ResumeContainer SIGCONT.
func (r *Runtime) PauseContainer(ctx context.Context, cid string) error {
	return r.setPaused(ctx, cid, true)
}

// ResumeContainer implements ContainerRuntime.
func (r *Runtime) ResumeContainer(ctx context.Context, cid string) error {
	return r.setPaused(ctx, cid, false)
}

func (r *Runtime) setPaused(ctx context.Context, cid string, pause bool) error {
	r.mu.Lock()
	c, err := r.lookup(cid)
	if err == nil && (c.state != stateRunning || c.paused == pause) {
		err = status.Errorf(codes.FailedPrecondition, "container %s is %s", cid, c.stateName())
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	op := opResume
	if pause {
		op = opPause
	}
	if _, err := r.call(ctx, c, &execMsg{Op: op}); err != nil {
		return err
	}
	r.mu.Lock()
	c.paused = pause
	r.mu.Unlock()
	return nil
}

// RemoveContainer implements ContainerRuntime.
func (r *Runtime) RemoveContainer(ctx context.Context, cid string) error {
	r.mu.Lock()
	c, err := r.lookup(cid)
	if err == nil && (c.state == stateStarting || c.state == stateRunning) {
		err = status.Errorf(codes.FailedPrecondition, "container %s is %s", cid, c.stateName())
	}
	if err == nil {
		delete(r.containers, cid)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.teardown(c)
	logrus.WithField("container", cid).Debug("agent: container removed")
	return nil
}

// serverExitWait bounds the wait for an exec server told to go.
var serverExitWait = 10 * time.Second

// teardown ends c's exec server (and with it every process, namespace
// and mount of c) and drops c's state.
func (r *Runtime) teardown(c *container) {
	if c.srv != nil {
		c.srv.shutdown()
		t := time.NewTimer(serverExitWait)
		select {
		case <-c.srvExit:
		case <-t.C:
			unix.Kill(c.srvPid, unix.SIGKILL)
			<-c.srvExit
		}
		t.Stop()
		<-c.readDone
		c.srv.close()
	}
	r.mu.Lock()
	procs := c.procs
	c.procs = map[string]*process{}
	r.mu.Unlock()
	for _, p := range procs {
		p.release()
		if p.pty != nil {
			p.pty.Close()
		}
	}
	os.RemoveAll(filepath.Join(r.cfg.StateDir, c.id))
}

// AttachStdio implements ContainerRuntime.
func (r *Runtime) AttachStdio(cid, execID string, kind StdioKind, s net.Conn, sessionDead func() bool) error {
	r.mu.Lock()
	_, p, err := r.lookupProc(cid, execID)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	ackStdio(s)
	switch kind {
	case StdioStdin:
		p.stdin.attach(s, sessionDead)
	case StdioStdout:
		p.out.attach(s)
	case StdioStderr:
		p.err.attach(s)
	default:
		return status.Errorf(codes.InvalidArgument, "bad stdio kind %d", kind)
	}
	return nil
}

func logStdioError(err error) {
	logrus.WithError(err).Debug("agent: stdio copy")
}
