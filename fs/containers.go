package fs

import (
	"context"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// newContainersDir is sandboxes/ID/containers: ctl, and a directory per
// container of the sandbox at.
func newContainersDir(t *tree, at ref) *objectsDir {
	return &objectsDir{
		t:    t,
		path: at.path() + "/containers",
		kind: "container",
		fixed: []entry{
			// Failures of create go to the sandbox's errors file.
			{name: "ctl", mode: modeCtl, make: func() fusefs.InodeEmbedder {
				return &ctlFile{t: t, at: at, cmds: containersCommands(t, at)}
			}},
		},
		list: func(ctx context.Context) ([]string, error) {
			s, err := at.sandbox(ctx, t.backend)
			if err != nil {
				return nil, err
			}
			return s.Containers(ctx)
		},
		child: func(ctx context.Context, id string) (*tableDir, error) {
			c := ref{sb: at.sb, ctr: id}
			if _, err := c.container(ctx, t.backend); err != nil {
				return nil, err
			}
			return newContainerDir(t, c), nil
		},
	}
}

func newContainerDir(t *tree, at ref) *tableDir {
	return &tableDir{
		t:       t,
		path:    at.path(),
		entries: containerEntries(t, at),
		exists: func(ctx context.Context) error {
			_, err := at.container(ctx, t.backend)
			return err
		},
	}
}

// containerEntries is sandboxes/ID/containers/CID.
func containerEntries(t *tree, at ref) []entry {
	return []entry{
		{name: "config", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: specFile{t.backend, at}}
		}},
		{name: "ctl", mode: modeCtl, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, cmds: containerCommands(t, at)}
		}},
		{name: "errors", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: errorsFile{t: t, dir: at.errorsDir()}}
		}},
		{name: "procs", mode: modeDir, make: func() fusefs.InodeEmbedder {
			return newProcsDir(t, at)
		}},
		{name: "status", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: containerStatusFile{t.backend, at, false}}
		}},
		{name: "status.json", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: containerStatusFile{t.backend, at, true}}
		}},
	}
}

// newProcsDir is containers/CID/procs: ctl, and a directory per process
// of the container at.
func newProcsDir(t *tree, at ref) *objectsDir {
	return &objectsDir{
		t:    t,
		path: at.path() + "/procs",
		kind: "proc",
		fixed: []entry{
			// Failures of exec go to the container's errors file.
			{name: "ctl", mode: modeCtl, make: func() fusefs.InodeEmbedder {
				return &ctlFile{t: t, at: at, cmds: procsCommands(t, at)}
			}},
		},
		list: func(ctx context.Context) ([]string, error) {
			c, err := at.container(ctx, t.backend)
			if err != nil {
				return nil, err
			}
			return c.Processes(ctx)
		},
		child: func(ctx context.Context, id string) (*tableDir, error) {
			p := ref{sb: at.sb, ctr: at.ctr, proc: id}
			if _, err := p.process(ctx, t.backend); err != nil {
				return nil, err
			}
			return newProcDir(t, p), nil
		},
	}
}

func newProcDir(t *tree, at ref) *tableDir {
	return &tableDir{
		t:       t,
		path:    at.path(),
		entries: procEntries(t, at),
		exists: func(ctx context.Context) error {
			_, err := at.process(ctx, t.backend)
			return err
		},
	}
}

// procEntries is procs/PID. Failures written to signal and winsize go
// to the container's errors file (at.errorsDir).
func procEntries(t *tree, at ref) []entry {
	stream := func(pick func(Process) Stream) func() fusefs.InodeEmbedder {
		return func() fusefs.InodeEmbedder {
			return &streamFile{t: t, open: func(ctx context.Context) (Stream, error) {
				p, err := at.process(ctx, t.backend)
				if err != nil {
					return nil, err
				}
				return pickStream(p, pick)
			}}
		}
	}
	return []entry{
		{name: "signal", mode: modeCtl, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, name: "signal", line: signalLine(t, at)}
		}},
		{name: "status", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: procStatusFile{t.backend, at, false}}
		}},
		{name: "status.json", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &genFile{t: t, gen: procStatusFile{t.backend, at, true}}
		}},
		{name: "stderr", mode: modeStream, make: stream(Process.Stderr),
			// A tty merges stderr into stdout: no stderr file.
			present: func(ctx context.Context) (bool, error) {
				p, err := at.process(ctx, t.backend)
				if err != nil {
					return false, err
				}
				return p.Stderr() != nil, nil
			}},
		{name: "stdin", mode: modeCtl, make: func() fusefs.InodeEmbedder {
			return &stdinFile{t: t, at: at}
		}},
		{name: "stdout", mode: modeStream, make: stream(Process.Stdout)},
		{name: "wait", mode: modeRead, make: func() fusefs.InodeEmbedder {
			return &waitFile{t: t, at: at}
		}},
		{name: "winsize", mode: modeRW, make: func() fusefs.InodeEmbedder {
			return &ctlFile{t: t, at: at, name: "winsize", line: winsizeLine(t, at), gen: winsizeFile{t.backend, at}}
		}},
	}
}
