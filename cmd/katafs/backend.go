package main

import (
	"context"

	"github.com/katafs/katafs/fs"
	"github.com/katafs/katafs/sandbox"
)

// The adapters below fit the sandbox package's concrete types to the
// interfaces fs consumes (Go has no covariant return types). No logic.

type backend struct{ m *sandbox.Manager }

var _ fs.Backend = backend{}

func (b backend) Create(ctx context.Context, cfg sandbox.Config) error {
	_, err := b.m.Create(ctx, cfg)
	return err
}

func (b backend) NewID() string { return b.m.NewID() }

func (b backend) List(ctx context.Context) ([]string, error) { return b.m.List(ctx) }

func (b backend) Sandbox(ctx context.Context, id string) (fs.Sandbox, error) {
	s, err := b.m.Fetch(ctx, id)
	if err != nil {
		return nil, err
	}
	return sandboxAdapter{s}, nil
}

func (b backend) Version(ctx context.Context) sandbox.VersionInfo { return b.m.Version(ctx) }

type sandboxAdapter struct{ *sandbox.Sandbox }

func (s sandboxAdapter) Container(ctx context.Context, id string) (fs.Container, error) {
	c, err := s.Sandbox.Container(ctx, id)
	if err != nil {
		return nil, err
	}
	return containerAdapter{c}, nil
}

// Events is a nil interface, not a nil pointer in one, when there is none.
func (s sandboxAdapter) Events() fs.Stream {
	if ev := s.Sandbox.Events(); ev != nil {
		return ev
	}
	return nil
}

type containerAdapter struct{ *sandbox.Container }

func (c containerAdapter) Process(ctx context.Context, id string) (fs.Process, error) {
	p, err := c.Container.Process(ctx, id)
	if err != nil {
		return nil, err
	}
	return processAdapter{p}, nil
}

type processAdapter struct{ *sandbox.Process }

func (p processAdapter) Stdout() fs.Stream { return p.Process.Stdout() }

// Stderr is a nil interface, not a nil pointer in one, for a tty process.
func (p processAdapter) Stderr() fs.Stream {
	if s := p.Process.Stderr(); s != nil {
		return s
	}
	return nil
}
