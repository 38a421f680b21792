package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The agent and a container's exec server (its PID 1, see execserver_linux.go)
// talk over a SOCK_SEQPACKET socketpair: one JSON message per packet,
// stdio fds of a new process passed along with SCM_RIGHTS.

// Operations.
const (
	opSetup  = "setup"  // agent -> server, first message
	opExec   = "exec"   // agent -> server, fds: stdin, stdout, stderr (or the pty slave)
	opSignal = "signal" // agent -> server
	opPause  = "pause"  // agent -> server: SIGSTOP every process
	opResume = "resume" // agent -> server
	opReply  = "reply"  // server -> agent, answers Seq
	opExit   = "exit"   // server -> agent, event: process ID exited
)

type execMsg struct {
	Seq     int            `json:"seq,omitempty"`
	Op      string         `json:"op"`
	ID      string         `json:"id,omitempty"`
	Setup   *execSetup     `json:"setup,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
	TTY     bool           `json:"tty,omitempty"`
	Signal  int            `json:"signal,omitempty"`
	Pid     int            `json:"pid,omitempty"`    // reply to exec: pid in the guest's root pid namespace
	Status  int            `json:"status,omitempty"` // exit: raw wait status
	Err     string         `json:"err,omitempty"`
	Code    int            `json:"code,omitempty"` // grpc code of Err
}

// execSetup is how the exec server makes the container.
type execSetup struct {
	ContainerID string `json:"cid"`
	Root        string `json:"root"`        // directory to chroot into
	DefaultRoot bool   `json:"defaultRoot"` // populate Root as a tmpfs with busybox
	// Device, if set, is a block device holding the root file system:
	// mounted read-only under Root with a writable overlay on top, which
	// becomes the root (Root/root).
	Device   string `json:"device,omitempty"`
	Busybox  string `json:"busybox,omitempty"`
	Hostname string `json:"hostname"`
}

const execMsgMax = 1 << 20

// msgConn is one end of the socketpair.
type msgConn struct {
	f   *os.File
	fd  int
	wmu sync.Mutex
	buf []byte // read buffer; only the single reader uses it
}

func newMsgConn(f *os.File) *msgConn {
	return &msgConn{f: f, fd: int(f.Fd()), buf: make([]byte, execMsgMax)}
}

func (c *msgConn) send(m *execMsg, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for {
		err = unix.Sendmsg(c.fd, b, oob, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// recv returns the next message and the fds that came with it (as
// close-on-exec files). io errors and EOF (peer gone) are errors.
func (c *msgConn) recv() (*execMsg, []*os.File, error) {
	oob := make([]byte, unix.CmsgSpace(4*8))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(c.fd, c.buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("peer closed")
	}
	var files []*os.File
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, err
		}
		for _, cm := range cmsgs {
			fds, err := unix.ParseUnixRights(&cm)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "passed"))
			}
		}
	}
	m := new(execMsg)
	if err := json.Unmarshal(c.buf[:n], m); err != nil {
		closeFiles(files)
		return nil, nil, fmt.Errorf("bad message: %w", err)
	}
	return m, files, nil
}

func (c *msgConn) close() error { return c.f.Close() }

// shutdown wakes a reader blocked in recv and shows the peer EOF.
func (c *msgConn) shutdown() { unix.Shutdown(c.fd, unix.SHUT_RDWR) }

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
