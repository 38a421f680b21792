package fs

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/katafs/katafs/sandbox"
)

// command is one verb of a ctl file.
type command struct {
	run func(ctx context.Context, args []string) error
	// names, when set, is the log field (sandbox, container, proc) of
	// the object the first argument names.
	names string
	// jsonTail: `VERB ID {...}` passes the JSON object from the brace
	// to the end of the line as one argument, unsplit.
	jsonTail bool
}

// commands is a ctl file's verb table.
type commands map[string]command

func (cs commands) lookup(verb string) (command, error) {
	c, ok := cs[verb]
	if !ok {
		return command{}, fmt.Errorf("%w: unknown command %q, want one of: %s",
			sandbox.ErrInvalid, verb, strings.Join(cs.verbs(), ", "))
	}
	return c, nil
}

func (cs commands) verbs() []string {
	vs := make([]string, 0, len(cs))
	for v := range cs {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// topCommands is /kata/ctl.
func topCommands(t *tree) commands {
	return commands{
		"create": {run: func(ctx context.Context, args []string) error {
			cfg, err := parseCreate(args)
			if err != nil {
				return err
			}
			return t.backend.Create(ctx, cfg)
		}, names: "sandbox"},
	}
}

// sandboxVerbs are the verbs of sandboxes/ID/ctl, none takes arguments.
var sandboxVerbs = map[string]func(Sandbox, context.Context) error{
	"start":   Sandbox.Start,
	"stop":    Sandbox.Stop,
	"pause":   Sandbox.Pause,
	"resume":  Sandbox.Resume,
	"release": Sandbox.Release,
	"delete":  Sandbox.Delete,
}

// sandboxCommands is sandboxes/ID/ctl.
func sandboxCommands(t *tree, id string) commands {
	cs := commands{}
	for verb, fn := range sandboxVerbs {
		cs[verb] = command{run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: %s takes no arguments, got %q", sandbox.ErrInvalid, verb, args)
			}
			s, err := t.backend.Sandbox(ctx, id)
			if err != nil {
				return err
			}
			if err := fn(s, ctx); err != nil {
				return err
			}
			if verb == "delete" {
				t.errs.drop(id)
			}
			return nil
		}}
	}
	return cs
}

// createOptions parses the key=value options of create into a Config.
var createOptions = map[string]func(*sandbox.Config, string) error{
	"memory":  func(c *sandbox.Config, v string) error { return positive(&c.MemoryMiB, "memory", v) },
	"cpus":    func(c *sandbox.Config, v string) error { return positive(&c.CPUs, "cpus", v) },
	"factory": func(c *sandbox.Config, v string) error { c.Factory = v; return nil },
	"netns":   func(c *sandbox.Config, v string) error { c.NetNS = v; return nil },
	"proxy":   func(c *sandbox.Config, v string) error { c.Proxy = v; return nil },
	"shim":    func(c *sandbox.Config, v string) error { c.Shim = v; return nil },
}

// parseCreate parses `ID [key=value]...`. It checks syntax only; which
// values are supported is the backend's call.
func parseCreate(args []string) (sandbox.Config, error) {
	var cfg sandbox.Config
	if len(args) == 0 || strings.Contains(args[0], "=") {
		return cfg, fmt.Errorf("%w: create: missing ID: create ID [key=value]...", sandbox.ErrInvalid)
	}
	if err := sandbox.ValidID(args[0]); err != nil {
		return cfg, err
	}
	cfg.ID = args[0]
	seen := map[string]bool{}
	for _, a := range args[1:] {
		k, v, ok := strings.Cut(a, "=")
		set, known := createOptions[k]
		switch {
		case !ok:
			return cfg, fmt.Errorf("%w: create %s: unexpected argument %q, want key=value", sandbox.ErrInvalid, cfg.ID, a)
		case !known:
			return cfg, fmt.Errorf("%w: create %s: unknown option %q, want one of: %s",
				sandbox.ErrInvalid, cfg.ID, k, strings.Join(optionNames(), ", "))
		case seen[k]:
			return cfg, fmt.Errorf("%w: create %s: option %s given twice", sandbox.ErrInvalid, cfg.ID, k)
		case v == "":
			return cfg, fmt.Errorf("%w: create %s: option %s has an empty value", sandbox.ErrInvalid, cfg.ID, k)
		}
		seen[k] = true
		if err := set(&cfg, v); err != nil {
			return cfg, fmt.Errorf("create %s: %w", cfg.ID, err)
		}
	}
	return cfg, nil
}

func optionNames() []string {
	ns := make([]string, 0, len(createOptions))
	for n := range createOptions {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// positive parses a positive decimal int (no sign, below 2^31).
func positive(dst *int, key, v string) error {
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil || n == 0 {
		return fmt.Errorf("%w: %s=%s: want a positive integer", sandbox.ErrInvalid, key, v)
	}
	*dst = int(n)
	return nil
}
