package fs

import (
	"context"
	"fmt"

	"github.com/katafs/katafs/sandbox"
	"github.com/sirupsen/logrus"
)

// ref names an object of the tree by its IDs: the top level (all empty),
// a sandbox, a container of it or a process of that. Nodes hold refs,
// never objects, and fetch the object on every operation, so a deleted
// one makes its files fail with ENOENT.
type ref struct {
	sb, ctr, proc string
}

func (r ref) sandbox(ctx context.Context, b Backend) (Sandbox, error) {
	return b.Sandbox(ctx, r.sb)
}

func (r ref) container(ctx context.Context, b Backend) (Container, error) {
	s, err := r.sandbox(ctx, b)
	if err != nil {
		return nil, err
	}
	return s.Container(ctx, r.ctr)
}

func (r ref) process(ctx context.Context, b Backend) (Process, error) {
	c, err := r.container(ctx, b)
	if err != nil {
		return nil, err
	}
	return c.Process(ctx, r.proc)
}

// path is the object's directory in the tree, for inode numbers.
func (r ref) path() string {
	p := ""
	if r.sb != "" {
		p = sandboxPath(r.sb)
	}
	if r.ctr != "" {
		p += "/containers/" + r.ctr
	}
	if r.proc != "" {
		p += "/procs/" + r.proc
	}
	return p
}

// errorsDir is the key of the errors file that failures of commands on
// the object go to: the top level's (""), the sandbox's (ID) or the
// container's (ID/CID); processes have none and use their container's.
func (r ref) errorsDir() string {
	switch {
	case r.sb == "":
		return ""
	case r.ctr == "":
		return r.sb
	default:
		return r.sb + "/" + r.ctr
	}
}

// fields are the object's log fields.
func (r ref) fields() logrus.Fields {
	f := logrus.Fields{}
	for _, kv := range []struct{ k, v string }{{"sandbox", r.sb}, {"container", r.ctr}, {"proc", r.proc}} {
		if kv.v != "" {
			f[kv.k] = kv.v
		}
	}
	return f
}

// checkName validates the ID of a new child of a directory that also
// holds fixed entries (ctl), which the ID must not shadow.
func checkName(id string, reserved ...string) error {
	if err := sandbox.ValidID(id); err != nil {
		return err
	}
	for _, r := range reserved {
		if id == r {
			return fmt.Errorf("%w: %q is a reserved name", sandbox.ErrInvalid, id)
		}
	}
	return nil
}
