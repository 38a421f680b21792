package main

import (
	"context"

	"github.com/katafs/katafs/fs"
	"github.com/katafs/katafs/sandbox"
)

// backend adapts the sandbox Manager to the interface fs consumes.
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
	return s, nil
}

func (b backend) Version(ctx context.Context) sandbox.VersionInfo { return b.m.Version(ctx) }
