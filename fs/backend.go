package fs

import (
	"context"

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
	// Done is closed when the VM is gone; the console stream then ends.
	Done() <-chan struct{}
}
