package agent

import (
	"context"
	"sync"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/katafs/katafs/agent/pb"
)

// hostNameMax is Linux's HOST_NAME_MAX.
const hostNameMax = 64

// ServiceConfig holds the steps of Service that touch the machine, so that
// tests run the real service on a host.
type ServiceConfig struct {
	// SetHostname sets the guest's hostname; nil skips it.
	SetHostname func(name string) error
	// KernelRelease reports uname -r; nil uses uname(2).
	KernelRelease func() (string, error)
	// Containers runs containers; nil answers their calls Unimplemented.
	Containers ContainerRuntime
	// Devices finds hot-plugged block devices; nil answers Unimplemented.
	Devices BlockDevices
	// Network configures interfaces and routes; nil answers Unimplemented.
	Network Network
}

// Service is the guest's AgentService. It outlives host connections: one
// Service is registered on each session's ttrpc server.
type Service struct {
	cfg ServiceConfig

	mu        sync.Mutex
	sandboxID string

	destroyOnce sync.Once
	destroyed   chan struct{}
}

var _ pb.AgentServiceService = (*Service)(nil)

// NewService returns the agent service.
func NewService(cfg ServiceConfig) *Service {
	if cfg.KernelRelease == nil {
		cfg.KernelRelease = unameRelease
	}
	return &Service{cfg: cfg, destroyed: make(chan struct{})}
}

// SandboxID is the id given by CreateSandbox, "" before.
func (s *Service) SandboxID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sandboxID
}

// Destroyed is closed once DestroySandbox has been called. The caller
// that owns the machine (RunInit) powers off then.
func (s *Service) Destroyed() <-chan struct{} {
	return s.destroyed
}

// Check implements pb.AgentServiceService.
func (s *Service) Check(ctx context.Context, _ *pb.CheckRequest) (*pb.CheckResponse, error) {
	return &pb.CheckResponse{Status: pb.CheckResponse_SERVING}, nil
}

// Version implements pb.AgentServiceService.
func (s *Service) Version(ctx context.Context, _ *pb.VersionRequest) (*pb.VersionResponse, error) {
	rel, err := s.cfg.KernelRelease()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kernel release: %v", err)
	}
	return &pb.VersionResponse{
		AgentVersion:    AgentVersion,
		ProtocolVersion: ProtocolVersion,
		KernelRelease:   rel,
	}, nil
}

// CreateSandbox implements pb.AgentServiceService.
func (s *Service) CreateSandbox(ctx context.Context, req *pb.CreateSandboxRequest) (*pb.Empty, error) {
	id, host := req.GetSandboxId(), req.GetHostname()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "empty sandbox id")
	}
	if len(host) > hostNameMax {
		return nil, status.Errorf(codes.InvalidArgument, "hostname of %d bytes, at most %d", len(host), hostNameMax)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sandboxID != "" {
		return nil, status.Errorf(codes.AlreadyExists, "sandbox %s already created", s.sandboxID)
	}
	if host != "" && s.cfg.SetHostname != nil {
		if err := s.cfg.SetHostname(host); err != nil {
			return nil, status.Errorf(codes.Internal, "set hostname %q: %v", host, err)
		}
	}
	s.sandboxID = id
	return &pb.Empty{}, nil
}

// DestroySandbox implements pb.AgentServiceService. It only acknowledges:
// powering off is up to whoever watches Destroyed, after the reply left.
func (s *Service) DestroySandbox(ctx context.Context, _ *pb.DestroySandboxRequest) (*pb.Empty, error) {
	s.destroyOnce.Do(func() { close(s.destroyed) })
	return &pb.Empty{}, nil
}

func unameRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// SetHostname sets the kernel hostname (ServiceConfig.SetHostname in the VM).
func SetHostname(name string) error {
	return unix.Sethostname([]byte(name))
}
