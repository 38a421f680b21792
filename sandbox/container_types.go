package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ContainerConfig is what `containers/ctl create` asks for.
type ContainerConfig struct {
	ID     string   `json:"id"`
	Rootfs string   `json:"rootfs,omitempty"` // empty: the guest's built-in busybox root
	Bundle string   `json:"bundle,omitempty"` // an OCI bundle directory
	TTY    bool     `json:"tty,omitempty"`
	Args   []string `json:"args,omitempty"` // the init process; empty: sh
}

// ContainerStatus is a container's status file, in rendering order.
type ContainerStatus struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	Pid   int    `json:"pid"`  // guest pid of the init process, 0 before start
	Exit  string `json:"exit"` // "" while running, else "exit N" or "signal NAME"
}

// ProcessConfig is what `procs/ctl exec` asks for. JSON, when set, is an
// OCI process object given in place of the words and wins over them.
type ProcessConfig struct {
	ID   string   `json:"id"`
	TTY  bool     `json:"tty,omitempty"`
	Env  []string `json:"env,omitempty"`
	Cwd  string   `json:"cwd,omitempty"`
	UID  *uint32  `json:"uid,omitempty"`
	GID  *uint32  `json:"gid,omitempty"`
	Args []string `json:"args"`
	JSON []byte   `json:"-"`
}

// ProcessStatus is a process's status file, in rendering order.
type ProcessStatus struct {
	ID            string `json:"id"`
	State         string `json:"state"` // running | exited
	Pid           int    `json:"pid"`
	Exit          string `json:"exit"`
	TTY           bool   `json:"tty"`
	StdoutBytes   int64  `json:"stdout_bytes"`
	StderrBytes   int64  `json:"stderr_bytes"`
	StdoutDropped int64  `json:"stdout_dropped"`
	StderrDropped int64  `json:"stderr_dropped"`
}

// ExitStatus is how a process ended: Signal set when a signal killed it.
type ExitStatus struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"` // "TERM", no SIG prefix
}

// String is the `wait` file's content: "exit 3" or "signal TERM".
func (e ExitStatus) String() string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return "exit " + strconv.Itoa(e.Code)
}

// ParseSignal reads TERM, SIGTERM, term or 15; anything else wraps ErrInvalid.
func ParseSignal(s string) (syscall.Signal, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("%w: signal %d out of range 1-64", ErrInvalid, n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%w: unknown signal %q", ErrInvalid, s)
}

// SignalName is TERM for SIGTERM.
func SignalName(sig syscall.Signal) string {
	return strings.TrimPrefix(unix.SignalName(sig), "SIG")
}
