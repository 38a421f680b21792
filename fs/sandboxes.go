package fs

import (
	"context"
	"fmt"

	fusefs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/katafs/katafs/sandbox"
)

// newSandboxesDir is /kata/sandboxes: readdir is Backend.List, a lookup
// is Backend.Sandbox.
func newSandboxesDir(t *tree) *objectsDir {
	return &objectsDir{
		t:    t,
		path: "/sandboxes",
		kind: "sandbox",
		list: t.backend.List,
		child: func(ctx context.Context, id string) (*tableDir, error) {
			if _, err := t.backend.Sandbox(ctx, id); err != nil {
				return nil, err
			}
			return newSandboxDir(t, id), nil
		},
	}
}

func sandboxPath(id string) string { return "/sandboxes/" + id }

// sandboxEntries is sandboxes/ID. events slots in here.
func sandboxEntries(t *tree, id string) []entry {
	at := ref{sb: id}
	sf := sandboxFile{t.backend, id}
	return []entry{
		{name: "config", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: configFile{sf}}
		}},
		{name: "console", mode: modeStream, make: func() fusefs.InodeEmbedder {
			return &streamFile{t: t, open: func(ctx context.Context) (Stream, error) {
				s, err := t.backend.Sandbox(ctx, id)
				if err != nil {
					return nil, err
				}
				return &fileStream{path: s.ConsolePath(), done: s.Done()}, nil
			}}
		}},
		{name: "containers", mode: modeDir, make: func() fusefs.InodeEmbedder {
			return newContainersDir(t, at)
		}},
		{name: "events", mode: modeStream, make: func() fusefs.InodeEmbedder {
			return &streamFile{t: t, open: func(ctx context.Context) (Stream, error) {
				s, err := t.backend.Sandbox(ctx, id)
				if err != nil {
					return nil, err
				}
				if ev := s.Events(); ev != nil {
					return ev, nil
				}
				return nil, fmt.Errorf("%w: sandbox %s has no events file", sandbox.ErrVM, id)
			}}
		}},
		{name: "ctl", mode: modeCtl, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, cmds: sandboxCommands(t, id)}
		}},
		{name: "devices", mode: modeRW, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, name: "devices", cmds: deviceCommands(t, id), gen: devicesFile{sf}}
		}},
		{name: "errors", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: errorsFile{t: t, dir: at.errorsDir()}}
		}},
		{name: "interfaces", mode: modeRW, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, name: "interfaces", cmds: interfaceCommands(t, id), gen: interfacesFile{sf}}
		}},
		{name: "routes", mode: modeRW, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, name: "routes", cmds: routeCommands(t, id), gen: routesFile{sf}}
		}},
		{name: "status", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: statusFile{sandboxFile: sf}}
		}},
		{name: "status.json", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: statusFile{sandboxFile: sf, asJSON: true}}
		}},
	}
}

func newSandboxDir(t *tree, id string) *tableDir {
	return &tableDir{
		t:       t,
		path:    sandboxPath(id),
		entries: sandboxEntries(t, id),
		exists: func(ctx context.Context) error {
			_, err := t.backend.Sandbox(ctx, id)
			return err
		},
	}
}
