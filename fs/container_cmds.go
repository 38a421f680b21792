package fs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/katafs/katafs/sandbox"
)

// containersCommands is sandboxes/ID/containers/ctl.
func containersCommands(t *tree, at ref) commands {
	return commands{
		"create": {run: func(ctx context.Context, args []string) error {
			cfg, err := parseContainerCreate(args)
			if err != nil {
				return err
			}
			s, err := at.sandbox(ctx, t.backend)
			if err != nil {
				return err
			}
			return s.CreateContainer(ctx, cfg)
		}, names: "container"},
	}
}

// containerVerbs are the verbs of containers/CID/ctl that take no
// arguments.
var containerVerbs = map[string]func(Container, context.Context) error{
	"start":  Container.Start,
	"stop":   Container.Stop,
	"pause":  Container.Pause,
	"resume": Container.Resume,
	"delete": Container.Delete,
}

// containerCommands is containers/CID/ctl.
func containerCommands(t *tree, at ref) commands {
	cs := commands{}
	for verb, fn := range containerVerbs {
		cs[verb] = command{run: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: %s takes no arguments, got %q", sandbox.ErrInvalid, verb, args)
			}
			c, err := at.container(ctx, t.backend)
			if err != nil {
				return err
			}
			if err := fn(c, ctx); err != nil {
				return err
			}
			if verb == "delete" {
				t.errs.drop(at.errorsDir())
			}
			return nil
		}}
	}
	cs["kill"] = command{run: func(ctx context.Context, args []string) error {
		sig, err := parseKill(args)
		if err != nil {
			return err
		}
		c, err := at.container(ctx, t.backend)
		if err != nil {
			return err
		}
		return c.Kill(ctx, sig)
	}}
	return cs
}

// parseKill parses the arguments of `kill [SIGNAL]`; the default is TERM.
func parseKill(args []string) (syscall.Signal, error) {
	switch len(args) {
	case 0:
		return syscall.SIGTERM, nil
	case 1:
		return sandbox.ParseSignal(args[0])
	default:
		return 0, fmt.Errorf("%w: kill takes one signal, got %q", sandbox.ErrInvalid, args)
	}
}

// procsCommands is containers/CID/procs/ctl.
func procsCommands(t *tree, at ref) commands {
	return commands{
		"exec": {run: func(ctx context.Context, args []string) error {
			cfg, err := parseExec(args)
			if err != nil {
				return err
			}
			c, err := at.container(ctx, t.backend)
			if err != nil {
				return err
			}
			return c.Exec(ctx, cfg)
		}, names: "proc", jsonTail: true},
	}
}

// reservedChild is the fixed entry of containers/ and procs/ that an ID
// must not shadow.
const reservedChild = "ctl"

// parseContainerCreate parses `CID [rootfs=PATH] [bundle=DIR] [--tty]
// [-- ARG...]`. It checks syntax only; the backend judges the paths.
func parseContainerCreate(args []string) (sandbox.ContainerConfig, error) {
	var cfg sandbox.ContainerConfig
	if len(args) == 0 || strings.Contains(args[0], "=") || strings.HasPrefix(args[0], "--") {
		return cfg, fmt.Errorf("%w: create: missing container ID: create CID [rootfs=PATH] [bundle=DIR] [--tty] [-- ARG...]", sandbox.ErrInvalid)
	}
	if err := checkName(args[0], reservedChild); err != nil {
		return cfg, err
	}
	cfg.ID = args[0]
	seen := map[string]bool{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			cfg.Args = args[i+1:]
			break
		}
		if a == "--tty" {
			cfg.TTY = true
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			return cfg, fmt.Errorf("%w: create %s: unexpected argument %q, want rootfs=, bundle=, --tty or -- ARG...", sandbox.ErrInvalid, cfg.ID, a)
		case k != "rootfs" && k != "bundle":
			return cfg, fmt.Errorf("%w: create %s: unknown option %q, want rootfs or bundle", sandbox.ErrInvalid, cfg.ID, k)
		case seen[k]:
			return cfg, fmt.Errorf("%w: create %s: option %s given twice", sandbox.ErrInvalid, cfg.ID, k)
		case v == "":
			return cfg, fmt.Errorf("%w: create %s: option %s has an empty value", sandbox.ErrInvalid, cfg.ID, k)
		}
		seen[k] = true
		if k == "rootfs" {
			cfg.Rootfs = v
		} else {
			cfg.Bundle = v
		}
	}
	if len(cfg.Args) == 0 {
		cfg.Args = nil
	}
	return cfg, nil
}

const execUsage = "exec PID [--tty] [--env K=V]... [--cwd DIR] [--user UID[:GID]] -- ARG..."

// parseExec parses `PID [--tty] [--env K=V]... [--cwd DIR] [--user
// UID[:GID]] -- ARG...`, or `PID {JSON}`: an OCI process object, passed
// on as ProcessConfig.JSON for the backend to read. Options take their
// value as the next word or after `=` (--env=K=V).
func parseExec(args []string) (sandbox.ProcessConfig, error) {
	var cfg sandbox.ProcessConfig
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || strings.HasPrefix(args[0], "{") {
		return cfg, fmt.Errorf("%w: exec: missing process ID: %s", sandbox.ErrInvalid, execUsage)
	}
	if err := checkName(args[0], reservedChild); err != nil {
		return cfg, err
	}
	cfg.ID = args[0]
	if len(args) == 2 && strings.HasPrefix(args[1], "{") {
		if !json.Valid([]byte(args[1])) {
			return cfg, fmt.Errorf("%w: exec %s: the process object is not valid JSON", sandbox.ErrInvalid, cfg.ID)
		}
		cfg.JSON = []byte(args[1])
		return cfg, nil
	}
	seen := map[string]bool{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			cfg.Args = args[i+1:]
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		if name == "--tty" {
			if hasVal {
				return cfg, fmt.Errorf("%w: exec %s: --tty takes no value", sandbox.ErrInvalid, cfg.ID)
			}
			cfg.TTY = true
			continue
		}
		if name != "--env" && name != "--cwd" && name != "--user" {
			return cfg, fmt.Errorf("%w: exec %s: unexpected argument %q: %s", sandbox.ErrInvalid, cfg.ID, a, execUsage)
		}
		if !hasVal {
			if i+1 == len(args) {
				return cfg, fmt.Errorf("%w: exec %s: %s needs a value", sandbox.ErrInvalid, cfg.ID, name)
			}
			i++
			val = args[i]
		}
		if name != "--env" && seen[name] {
			return cfg, fmt.Errorf("%w: exec %s: %s given twice", sandbox.ErrInvalid, cfg.ID, name)
		}
		seen[name] = true
		if err := setExecOption(&cfg, name, val); err != nil {
			return cfg, fmt.Errorf("%w: exec %s: %s", sandbox.ErrInvalid, cfg.ID, err)
		}
	}
	if len(cfg.Args) == 0 {
		return cfg, fmt.Errorf("%w: exec %s: no command: %s", sandbox.ErrInvalid, cfg.ID, execUsage)
	}
	return cfg, nil
}

func setExecOption(cfg *sandbox.ProcessConfig, name, val string) error {
	switch name {
	case "--env":
		if k, _, ok := strings.Cut(val, "="); !ok || k == "" {
			return fmt.Errorf("--env %q: want NAME=VALUE", val)
		}
		cfg.Env = append(cfg.Env, val)
	case "--cwd":
		if !strings.HasPrefix(val, "/") {
			return fmt.Errorf("--cwd %q: want an absolute path", val)
		}
		cfg.Cwd = val
	case "--user":
		u, g, hasGID := strings.Cut(val, ":")
		uid, err := parseID(u)
		if err != nil {
			return fmt.Errorf("--user %q: want UID[:GID], numeric", val)
		}
		cfg.UID = &uid
		if hasGID {
			gid, err := parseID(g)
			if err != nil {
				return fmt.Errorf("--user %q: want UID[:GID], numeric", val)
			}
			cfg.GID = &gid
		}
	}
	return nil
}

// parseID parses a decimal uid or gid.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// parseWinsize parses `ROWS COLS`, both 1 to 65535.
func parseWinsize(words []string) (rows, cols uint16, err error) {
	bad := fmt.Errorf("%w: want ROWS COLS, two numbers from 1 to 65535, got %q", sandbox.ErrInvalid, strings.Join(words, " "))
	if len(words) != 2 {
		return 0, 0, bad
	}
	var n [2]uint16
	for i, w := range words {
		v, err := strconv.ParseUint(w, 10, 16)
		if err != nil || v == 0 {
			return 0, 0, bad
		}
		n[i] = uint16(v)
	}
	return n[0], n[1], nil
}
