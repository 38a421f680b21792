package fs

import (
	"context"
	"syscall"

	"github.com/katafs/katafs/sandbox"
)

// Backend is what the tree needs of the sandbox layer.
type Backend interface {
	// Create makes a sandbox and returns once it is ready. cfg holds only
	// what the user gave (zero values mean default); the backend fills in
	// defaults and validates values (ErrInvalid for unsupported ones).
	Create(ctx context.Context, cfg sandbox.Config) error
	// NewID returns a fresh sandbox ID for /kata/clone.
	NewID() string
	List(ctx context.Context) ([]string, error)
	// Sandbox fetches a sandbox; the error wraps ErrNotFound if none.
	Sandbox(ctx context.Context, id string) (Sandbox, error)
	Version(ctx context.Context) sandbox.VersionInfo
}

// Sandbox is one sandbox as the tree sees it.
type Sandbox interface {
	ID() string
	Config() sandbox.Config
	Status(ctx context.Context) (sandbox.Status, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Release(ctx context.Context) error
	Delete(ctx context.Context) error
	// ConsolePath is a log file QEMU appends the guest console to.
	ConsolePath() string
	// Events is the sandbox's events stream (Monitor); nil if it has none.
	Events() Stream
	// Done is closed when the VM is gone; the console stream then ends.
	Done() <-chan struct{}
	Containers(ctx context.Context) ([]string, error)
	// Container fetches a container; the error wraps ErrNotFound if none.
	Container(ctx context.Context, id string) (Container, error)
	// CreateContainer returns once the container is created (not started).
	CreateContainer(ctx context.Context, cfg sandbox.ContainerConfig) error

	// Hotplug: the devices, interfaces and routes files. An add
	// returns once the guest sees the device, NIC or route; a taken
	// name wraps ErrExists, an unknown one ErrNotFound, no free port
	// ErrNoSpace. The lists are in the backend's order.
	Devices(ctx context.Context) ([]sandbox.Device, error)
	// AddDevice with cfg.ID "" picks a fresh ID.
	AddDevice(ctx context.Context, cfg sandbox.DeviceConfig) error
	RemoveDevice(ctx context.Context, id string) error
	Interfaces(ctx context.Context) ([]sandbox.NIC, error)
	AddInterface(ctx context.Context, cfg sandbox.NICConfig) error
	RemoveInterface(ctx context.Context, name string) error
	Routes(ctx context.Context) ([]sandbox.Route, error)
	AddRoute(ctx context.Context, r sandbox.Route) error
	// DelRoute removes the route to dest (a CIDR or "default").
	DelRoute(ctx context.Context, dest string) error
}

// Container is one container of a sandbox as the tree sees it.
type Container interface {
	ID() string
	// Spec is the OCI runtime spec, JSON: the `config` file.
	Spec() []byte
	Status(ctx context.Context) (sandbox.ContainerStatus, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Delete(ctx context.Context) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Kill(ctx context.Context, sig syscall.Signal) error
	// Processes lists the process IDs, "init" among them.
	Processes(ctx context.Context) ([]string, error)
	// Process fetches a process; the error wraps ErrNotFound if none.
	Process(ctx context.Context, id string) (Process, error)
	// Exec returns once the process runs; a taken ID wraps ErrExists.
	Exec(ctx context.Context, cfg sandbox.ProcessConfig) error
}

// Process is one process of a container.
type Process interface {
	ID() string
	Status(ctx context.Context) (sandbox.ProcessStatus, error)
	Stdout() Stream
	// Stderr is nil for a tty process (a tty merges both): the
	// process directory then has no stderr file.
	Stderr() Stream
	// OpenStdin says a writer opened stdin; every OpenStdin is matched
	// by one ReleaseStdin.
	OpenStdin()
	// WriteStdin passes bytes on, in the order of the calls.
	WriteStdin(ctx context.Context, p []byte) (int, error)
	// ReleaseStdin says a writer closed stdin; the last one gives the
	// process EOF.
	ReleaseStdin() error
	Signal(ctx context.Context, sig syscall.Signal) error
	Resize(ctx context.Context, rows, cols uint16) error
	Winsize() (rows, cols uint16)
	// Wait blocks until the process ended and its stdout and stderr are
	// fully drained.
	Wait(ctx context.Context) (sandbox.ExitStatus, error)
}

// Stream is a growing log a process's output is spooled to.
type Stream interface {
	// Size is how much has been produced so far.
	Size() int64
	// ReadAt returns at once below Size; at the end it blocks until
	// more data comes, returns io.EOF when the source ended, or
	// ctx.Err().
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
}
