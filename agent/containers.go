package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/katafs/katafs/agent/pb"
)

// initExecID is the exec id of a container's own first process.
const initExecID = "init"

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code   int    // exit code, or 128+signal number when killed by a signal
	Signal string // the signal's name without SIG ("TERM") when killed by one
}

func (e ExitStatus) String() string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return fmt.Sprintf("exit %d", e.Code)
}

// exitStatusOf encodes a wait status.
func exitStatusOf(ws unix.WaitStatus) ExitStatus {
	if ws.Signaled() {
		sig := ws.Signal()
		name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
		if name == "" {
			name = fmt.Sprint(int(sig))
		}
		return ExitStatus{Code: 128 + int(sig), Signal: name}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func checkID(what, id string) error {
	if !idPattern.MatchString(id) {
		return status.Errorf(codes.InvalidArgument, "bad %s id %q", what, id)
	}
	return nil
}

// ContainerRuntime is the guest's container runtime as Service uses it;
// Runtime (linux) is the real one. Its methods mirror Client's.
type ContainerRuntime interface {
	CreateContainer(ctx context.Context, id string, spec *specs.Spec, tty bool) error
	StartContainer(ctx context.Context, id string) (int, error)
	ExecProcess(ctx context.Context, cid, execID string, p *specs.Process, tty bool) (int, error)
	WaitProcess(ctx context.Context, cid, execID string) (ExitStatus, error)
	SignalProcess(ctx context.Context, cid, execID string, sig syscall.Signal) error
	ResizeTTY(ctx context.Context, cid, execID string, rows, cols uint16) error
	CloseStdin(ctx context.Context, cid, execID string) error
	PauseContainer(ctx context.Context, cid string) error
	ResumeContainer(ctx context.Context, cid string) error
	RemoveContainer(ctx context.Context, cid string) error
	// AttachStdio hands stream s to the stdio stream kind of a process.
	// sessionDead reports whether the session of s has died.
	AttachStdio(cid, execID string, kind StdioKind, s net.Conn, sessionDead func() bool) error
}

// Host side.

// CreateContainer creates container id from spec; spec.Process is its
// init process (exec id "init"), not started yet, but with its stdio
// ready to attach. spec.Root nil or with an empty Path means the guest's
// built-in busybox root. A Root.Path under /dev/ is a block device in
// the guest (from WaitBlockDevice) holding the root file system (ext4, or
// another type the guest kernel knows): it is mounted read-only with a
// writable overlay on top whose changes live in guest memory and go with
// RemoveContainer. Any other Root.Path is a directory in the guest.
func (c *Client) CreateContainer(ctx context.Context, id string, spec *specs.Spec, tty bool) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("agent: create container %s: %w", id, err)
	}
	_, err = c.api.CreateContainer(ctx, &pb.CreateContainerRequest{ContainerId: id, SpecJson: b, Tty: tty})
	if err != nil {
		return fmt.Errorf("agent: create container %s: %w", id, err)
	}
	return nil
}

// StartContainer starts the init process of container id and returns its
// pid in the guest's root pid namespace.
func (c *Client) StartContainer(ctx context.Context, id string) (int, error) {
	resp, err := c.api.StartContainer(ctx, &pb.ContainerRequest{ContainerId: id})
	if err != nil {
		return 0, fmt.Errorf("agent: start container %s: %w", id, err)
	}
	return int(resp.GetPid()), nil
}

// ExecProcess starts p in the running container cid as execID and returns
// once it runs.
func (c *Client) ExecProcess(ctx context.Context, cid, execID string, p *specs.Process, tty bool) (int, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return 0, fmt.Errorf("agent: exec %s in %s: %w", execID, cid, err)
	}
	resp, err := c.api.ExecProcess(ctx, &pb.ExecProcessRequest{ContainerId: cid, ExecId: execID, ProcessJson: b, Tty: tty})
	if err != nil {
		return 0, fmt.Errorf("agent: exec %s in %s: %w", execID, cid, err)
	}
	return int(resp.GetPid()), nil
}

// WaitProcess blocks until the process has exited and returns how. It may
// be called any number of times; the status is kept until RemoveContainer.
func (c *Client) WaitProcess(ctx context.Context, cid, execID string) (ExitStatus, error) {
	resp, err := c.api.WaitProcess(ctx, &pb.ProcessRequest{ContainerId: cid, ExecId: execID})
	if err != nil {
		return ExitStatus{}, fmt.Errorf("agent: wait %s/%s: %w", cid, execID, err)
	}
	return ExitStatus{Code: int(resp.GetCode()), Signal: resp.GetSignal()}, nil
}

// SignalProcess sends sig to the process (FailedPrecondition if it is not
// running).
func (c *Client) SignalProcess(ctx context.Context, cid, execID string, sig syscall.Signal) error {
	_, err := c.api.SignalProcess(ctx, &pb.SignalProcessRequest{ContainerId: cid, ExecId: execID, Signal: uint32(sig)})
	if err != nil {
		return fmt.Errorf("agent: signal %s/%s: %w", cid, execID, err)
	}
	return nil
}

// ResizeTTY sets the terminal size of a tty process.
func (c *Client) ResizeTTY(ctx context.Context, cid, execID string, rows, cols uint16) error {
	_, err := c.api.ResizeTTY(ctx, &pb.ResizeTTYRequest{ContainerId: cid, ExecId: execID, Rows: uint32(rows), Cols: uint32(cols)})
	if err != nil {
		return fmt.Errorf("agent: resize tty %s/%s: %w", cid, execID, err)
	}
	return nil
}

// CloseStdin gives the process EOF on stdin (for a tty: the EOF character).
func (c *Client) CloseStdin(ctx context.Context, cid, execID string) error {
	_, err := c.api.CloseStdin(ctx, &pb.ProcessRequest{ContainerId: cid, ExecId: execID})
	if err != nil {
		return fmt.Errorf("agent: close stdin %s/%s: %w", cid, execID, err)
	}
	return nil
}

// PauseContainer stops every process of the container.
func (c *Client) PauseContainer(ctx context.Context, cid string) error {
	if _, err := c.api.PauseContainer(ctx, &pb.ContainerRequest{ContainerId: cid}); err != nil {
		return fmt.Errorf("agent: pause %s: %w", cid, err)
	}
	return nil
}

// ResumeContainer continues a paused container.
func (c *Client) ResumeContainer(ctx context.Context, cid string) error {
	if _, err := c.api.ResumeContainer(ctx, &pb.ContainerRequest{ContainerId: cid}); err != nil {
		return fmt.Errorf("agent: resume %s: %w", cid, err)
	}
	return nil
}

// RemoveContainer removes a container whose init is not running, with
// its processes' statuses and its mounts.
func (c *Client) RemoveContainer(ctx context.Context, cid string) error {
	if _, err := c.api.RemoveContainer(ctx, &pb.ContainerRequest{ContainerId: cid}); err != nil {
		return fmt.Errorf("agent: remove %s: %w", cid, err)
	}
	return nil
}

// Guest side: the ttrpc handlers.

func (s *Service) runtime() (ContainerRuntime, error) {
	if s.cfg.Containers == nil {
		return nil, status.Error(codes.Unimplemented, "this agent runs no containers")
	}
	return s.cfg.Containers, nil
}

// CreateContainer implements pb.AgentServiceService.
func (s *Service) CreateContainer(ctx context.Context, req *pb.CreateContainerRequest) (*pb.Empty, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(req.GetSpecJson(), &spec); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "spec: %v", err)
	}
	if err := rt.CreateContainer(ctx, req.GetContainerId(), &spec, req.GetTty()); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// StartContainer implements pb.AgentServiceService.
func (s *Service) StartContainer(ctx context.Context, req *pb.ContainerRequest) (*pb.PidResponse, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	pid, err := rt.StartContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &pb.PidResponse{Pid: int64(pid)}, nil
}

// ExecProcess implements pb.AgentServiceService.
func (s *Service) ExecProcess(ctx context.Context, req *pb.ExecProcessRequest) (*pb.PidResponse, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	var p specs.Process
	if err := json.Unmarshal(req.GetProcessJson(), &p); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "process: %v", err)
	}
	pid, err := rt.ExecProcess(ctx, req.GetContainerId(), req.GetExecId(), &p, req.GetTty())
	if err != nil {
		return nil, err
	}
	return &pb.PidResponse{Pid: int64(pid)}, nil
}

// WaitProcess implements pb.AgentServiceService.
func (s *Service) WaitProcess(ctx context.Context, req *pb.ProcessRequest) (*pb.WaitProcessResponse, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	st, err := rt.WaitProcess(ctx, req.GetContainerId(), req.GetExecId())
	if err != nil {
		return nil, err
	}
	return &pb.WaitProcessResponse{Code: int32(st.Code), Signal: st.Signal}, nil
}

// SignalProcess implements pb.AgentServiceService.
func (s *Service) SignalProcess(ctx context.Context, req *pb.SignalProcessRequest) (*pb.Empty, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	if err := rt.SignalProcess(ctx, req.GetContainerId(), req.GetExecId(), syscall.Signal(req.GetSignal())); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// ResizeTTY implements pb.AgentServiceService.
func (s *Service) ResizeTTY(ctx context.Context, req *pb.ResizeTTYRequest) (*pb.Empty, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	if req.GetRows() > 0xffff || req.GetCols() > 0xffff {
		return nil, status.Error(codes.InvalidArgument, "tty size out of range")
	}
	if err := rt.ResizeTTY(ctx, req.GetContainerId(), req.GetExecId(), uint16(req.GetRows()), uint16(req.GetCols())); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// CloseStdin implements pb.AgentServiceService.
func (s *Service) CloseStdin(ctx context.Context, req *pb.ProcessRequest) (*pb.Empty, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	if err := rt.CloseStdin(ctx, req.GetContainerId(), req.GetExecId()); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// PauseContainer implements pb.AgentServiceService.
func (s *Service) PauseContainer(ctx context.Context, req *pb.ContainerRequest) (*pb.Empty, error) {
	return s.containerOp(ctx, req, ContainerRuntime.PauseContainer)
}

// ResumeContainer implements pb.AgentServiceService.
func (s *Service) ResumeContainer(ctx context.Context, req *pb.ContainerRequest) (*pb.Empty, error) {
	return s.containerOp(ctx, req, ContainerRuntime.ResumeContainer)
}

// RemoveContainer implements pb.AgentServiceService.
func (s *Service) RemoveContainer(ctx context.Context, req *pb.ContainerRequest) (*pb.Empty, error) {
	return s.containerOp(ctx, req, ContainerRuntime.RemoveContainer)
}

func (s *Service) containerOp(ctx context.Context, req *pb.ContainerRequest, op func(ContainerRuntime, context.Context, string) error) (*pb.Empty, error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, err
	}
	if err := op(rt, ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &pb.Empty{}, nil
}

// serveStdio answers one stdio stream of a session: reads its header and
// hands it to the runtime.
func (s *Service) serveStdio(st net.Conn, sessionDead func() bool) {
	h, err := readStdioHeader(st)
	if err != nil {
		writeStdioReply(st, status.Errorf(codes.InvalidArgument, "stdio header: %v", err))
		st.Close()
		return
	}
	rt, err := s.runtime()
	if err == nil {
		err = rt.AttachStdio(h.cid, h.execID, h.kind, &replyFirst{Conn: st}, sessionDead)
	}
	if err != nil {
		writeStdioReply(st, err)
		st.Close()
	}
}

// replyFirst is a stdio stream whose OK reply is still to be sent: the
// runtime acks (ackStdio) once it found the process and before output
// flows; Close of an unacked stream sends it too, so that a stream that
// ends at once reads as an empty stream, not an error.
type replyFirst struct {
	net.Conn
	sent bool
}

func (r *replyFirst) ack() error {
	if r.sent {
		return nil
	}
	r.sent = true
	return writeStdioReply(r.Conn, nil)
}

func (r *replyFirst) Close() error {
	r.ack()
	return r.Conn.Close()
}

// ackStdio sends the OK reply of a stdio stream handed to AttachStdio.
func ackStdio(s net.Conn) {
	if r, ok := s.(*replyFirst); ok {
		r.ack()
	}
}
