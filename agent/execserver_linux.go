package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
)

// The exec server is a container's PID 1: the agent binary re-executed in
// new pid, mount, uts and ipc namespaces (Go cannot setns into a mount
// namespace, so exec'd processes cannot be started from the agent). It
// makes the container's mounts, chroots into its root, and then starts
// the init process and every exec'd process as its own children on the
// agent's request, reports their exits and forwards signals. It exits when
// the agent closes its socket, taking every process of the container with
// it (the kernel kills a pid namespace whose init dies).

// containerInitEnv marks the agent binary's container init mode.
const containerInitEnv = "KATAFS_CONTAINER_INIT"

// execServerFd is the socket's fd in the exec server.
const execServerFd = 3

// IsContainerInit reports whether this process was started as a
// container's exec server. main (and TestMain of tests that start
// containers) must check it first and then call RunContainerInit.
func IsContainerInit() bool { return os.Getenv(containerInitEnv) == "1" }

// RunContainerInit is the exec server's main. It never returns.
func RunContainerInit() {
	os.Unsetenv(containerInitEnv)
	c := newMsgConn(os.NewFile(execServerFd, "agent"))
	s := &execServer{conn: c, procs: map[string]int{}, reaper: NewReaper()}
	err := s.serve()
	// The agent left (or setup failed): nothing of the container outlives us.
	unix.Kill(-1, unix.SIGKILL)
	if err != nil {
		fmt.Fprintf(os.Stderr, "katafs-agent: container init: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type execServer struct {
	conn      *msgConn
	reaper    *Reaper
	outerProc int // dirfd of the guest's /proc (root pid namespace)

	mu    sync.Mutex
	procs map[string]int // exec id -> pid in our namespace, while it runs
}

func (s *execServer) serve() error {
	m, files, err := s.conn.recv()
	if err != nil {
		return fmt.Errorf("read setup: %w", err)
	}
	closeFiles(files)
	if m.Op != opSetup || m.Setup == nil {
		return fmt.Errorf("first message is %q, not setup", m.Op)
	}
	if err := s.setup(m.Setup); err != nil {
		s.conn.send(&execMsg{Seq: m.Seq, Op: opReply, Err: err.Error(), Code: int(codes.Internal)})
		return err
	}
	if err := s.conn.send(&execMsg{Seq: m.Seq, Op: opReply}); err != nil {
		return err
	}
	go s.reaper.Run(context.Background())
	for {
		m, files, err := s.conn.recv()
		if err != nil {
			return nil // the agent closed the socket: remove
		}
		reply := &execMsg{Seq: m.Seq, Op: opReply}
		var exited <-chan unix.WaitStatus
		switch m.Op {
		case opExec:
			exited, err = s.exec(m, files, reply)
		case opSignal:
			err = s.signal(m.ID, m.Signal)
		case opPause:
			if err = sysErr(unix.Kill(-1, unix.SIGSTOP)); err == nil {
				err = waitStopped()
			}
		case opResume:
			err = sysErr(unix.Kill(-1, unix.SIGCONT))
		default:
			err = &codeErr{codes.InvalidArgument, fmt.Sprintf("unknown op %q", m.Op)}
		}
		closeFiles(files)
		if err != nil {
			reply.Err, reply.Code = err.Error(), int(codes.Internal)
			var ce *codeErr
			if errors.As(err, &ce) {
				reply.Code = int(ce.code)
			}
		}
		if err := s.conn.send(reply); err != nil {
			return nil
		}
		if exited != nil {
			go s.reportExit(m.ID, exited)
		}
	}
}

// sysErr ignores ESRCH of kill(-1): no process to signal.
func sysErr(err error) error {
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

type codeErr struct {
	code codes.Code
	msg  string
}

func (e *codeErr) Error() string { return e.msg }

func (s *execServer) reportExit(id string, exited <-chan unix.WaitStatus) {
	ws := <-exited
	s.mu.Lock()
	delete(s.procs, id)
	s.mu.Unlock()
	if id == initExecID {
		// The container ends with its init, as it would if init were
		// the namespace's PID 1.
		unix.Kill(-1, unix.SIGKILL)
	}
	s.conn.send(&execMsg{Op: opExit, ID: id, Status: int(ws)})
}

func (s *execServer) signal(id string, sig int) error {
	s.mu.Lock()
	pid, ok := s.procs[id]
	s.mu.Unlock()
	if !ok {
		return &codeErr{codes.FailedPrecondition, fmt.Sprintf("process %s is not running", id)}
	}
	return sysErr(unix.Kill(pid, syscall.Signal(sig)))
}

// exec starts process m.ID with the fds that came with m.
func (s *execServer) exec(m *execMsg, files []*os.File, reply *execMsg) (<-chan unix.WaitStatus, error) {
	p := m.Process
	if p == nil || len(p.Args) == 0 {
		return nil, &codeErr{codes.InvalidArgument, "empty argv"}
	}
	var fds []uintptr
	switch {
	case m.TTY && len(files) == 1:
		fds = []uintptr{files[0].Fd(), files[0].Fd(), files[0].Fd()}
	case !m.TTY && len(files) == 3:
		fds = []uintptr{files[0].Fd(), files[1].Fd(), files[2].Fd()}
	default:
		return nil, fmt.Errorf("exec %s: got %d fds", m.ID, len(files))
	}
	env := processEnv(p.Env)
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return nil, &codeErr{codes.InvalidArgument, err.Error()}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	sys := &syscall.SysProcAttr{Setsid: true}
	if m.TTY {
		sys.Setctty, sys.Ctty = true, 0
	}
	if u := p.User; u.UID != 0 || u.GID != 0 || len(u.AdditionalGids) > 0 {
		sys.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.AdditionalGids}
	}
	pidfd := -1
	sys.PidFD = &pidfd
	var nspid int
	exited, err := s.reaper.Spawn(func() (int, error) {
		pid, err := syscall.ForkExec(path, p.Args, &syscall.ProcAttr{Dir: cwd, Env: env, Files: fds, Sys: sys})
		if err != nil {
			return 0, err
		}
		nspid = pid
		// Still unreaped (the reaper waits for us): translate the pid.
		if pidfd >= 0 {
			reply.Pid = s.outerPid(pidfd)
			unix.Close(pidfd)
		}
		return pid, nil
	})
	if err != nil {
		return nil, &codeErr{codes.InvalidArgument, fmt.Sprintf("exec %s: %v", p.Args[0], err)}
	}
	s.mu.Lock()
	s.procs[m.ID] = nspid
	s.mu.Unlock()
	return exited, nil
}

// outerPid reads the pid of a pidfd as the guest's root pid namespace
// sees it, through the guest's /proc kept open from before the chroot.
func (s *execServer) outerPid(pidfd int) int {
	fd, err := unix.Openat(s.outerProc, "self/fdinfo/"+strconv.Itoa(pidfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	f := os.NewFile(uintptr(fd), "fdinfo")
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// defaultPath is PATH of processes whose env lacks one.
const defaultPath = "PATH=/bin:/sbin:/usr/bin:/usr/sbin"

func processEnv(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append(append([]string(nil), env...), defaultPath)
}

// lookPath finds argv0 on the PATH of the process's own environment.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	path := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: executable file not found in $PATH", argv0)
}

// setup makes the container's file system view and identity.
func (s *execServer) setup(st *execSetup) error {
	// Our mounts must not propagate back to the guest's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	fd, err := unix.Open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	s.outerProc = fd
	root := st.Root
	switch {
	case st.DefaultRoot:
		if err := makeDefaultRoot(root, st.Busybox); err != nil {
			return fmt.Errorf("default root: %w", err)
		}
	case st.Device != "":
		if root, err = mountImageRoot(st.Root, st.Device); err != nil {
			return fmt.Errorf("root on %s: %w", st.Device, err)
		}
	}
	mounts := []mount{
		{"proc", "proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"/dev", "dev", "", unix.MS_BIND | unix.MS_REC, ""},
		{"tmpfs", "tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	}
	for _, m := range mounts {
		target := filepath.Join(root, m.target)
		os.MkdirAll(target, 0o755) // a read-only image may have it already
		if err := unix.Mount(m.source, target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.source, target, err)
		}
	}
	if err := unix.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(st.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	return nil
}

// makeDefaultRoot makes root a tmpfs with busybox and its applets in
// bin/, bind-mounted read-only from the guest's busybox.
func makeDefaultRoot(root, busybox string) error {
	// No reaper runs yet in the exec server: os/exec may wait.
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", busybox, err)
	}
	applets := strings.Fields(string(out))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", root, err)
	}
	for _, d := range []string{"bin", "etc", "proc", "dev", "tmp", "root", "usr", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range [][2]string{{"sbin", "bin"}, {"usr/bin", "../bin"}, {"usr/sbin", "../bin"}} {
		if err := os.Symlink(l[1], filepath.Join(root, l[0])); err != nil {
			return err
		}
	}
	bb := filepath.Join(root, "bin/busybox")
	if err := os.WriteFile(bb, nil, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(busybox, bb, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", busybox, err)
	}
	unix.Mount("", bb, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	for _, a := range applets {
		a = filepath.Base(a)
		if a == "busybox" || a == "." || a == "/" {
			continue
		}
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// waitStopped waits until every process of the namespace but us has
// taken its SIGSTOP (signals are delivered when a process next runs), so
// that a paused container is paused when PauseContainer returns. The
// kernel has no event for that: poll /proc, briefly.
func waitStopped() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		running := ""
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == 1 {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue // gone
			}
			// The state follows the command name's closing paren.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) {
				continue
			}
			switch b[i+2] {
			case 'T', 't', 'Z', 'X':
			default:
				running = e.Name()
			}
		}
		if running == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %s did not stop", running)
		}
		time.Sleep(time.Millisecond)
	}
}
