package fs

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/katafs/katafs/sandbox"
)

// The writable list files of a sandbox: devices, interfaces, routes.
// fs checks the syntax of each line (so a typo fails with EINVAL before
// the VM is touched); whether a value fits the sandbox (a free port, a
// taken name) is the backend's call.

// sandboxOp is a list-file verb: parse args, then act on the sandbox.
func sandboxOp[T any](t *tree, id string, parse func([]string) (T, error), act func(Sandbox, context.Context, T) error) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		v, err := parse(args)
		if err != nil {
			return err
		}
		s, err := t.backend.Sandbox(ctx, id)
		if err != nil {
			return err
		}
		return act(s, ctx, v)
	}
}

// deviceCommands is sandboxes/ID/devices.
func deviceCommands(t *tree, id string) commands {
	return commands{
		"add":    {run: sandboxOp(t, id, parseAddDevice, Sandbox.AddDevice)},
		"remove": {run: sandboxOp(t, id, parseRemoveDevice, Sandbox.RemoveDevice), names: "device"},
	}
}

// interfaceCommands is sandboxes/ID/interfaces.
func interfaceCommands(t *tree, id string) commands {
	return commands{
		"add":    {run: sandboxOp(t, id, parseAddInterface, Sandbox.AddInterface), names: "interface"},
		"remove": {run: sandboxOp(t, id, parseRemoveInterface, Sandbox.RemoveInterface), names: "interface"},
	}
}

// routeCommands is sandboxes/ID/routes.
func routeCommands(t *tree, id string) commands {
	return commands{
		"add": {run: sandboxOp(t, id, parseAddRoute, Sandbox.AddRoute), names: "route"},
		"del": {run: sandboxOp(t, id, parseDelRoute, Sandbox.DelRoute), names: "route"},
	}
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sandbox.ErrInvalid}, a...)...)
}

// option is one key=value option of a list-file command.
type option struct {
	set func(v string) error
	// repeat: may be given more than once (addr=).
	repeat bool
	// flag: may also be given as the bare key (ro), set then gets "".
	flag bool
}

// parseOptions parses key=value words into opts; usage ends messages
// about words that are no option at all.
func parseOptions(usage string, args []string, opts map[string]option) error {
	seen := map[string]bool{}
	for _, a := range args {
		k, v, hasValue := strings.Cut(a, "=")
		o, known := opts[k]
		switch {
		case !known && !hasValue:
			return invalid("unexpected argument %q: %s", a, usage)
		case !known:
			return invalid("unknown option %q: %s", k, usage)
		case !hasValue && !o.flag:
			return invalid("option %s needs a value: %s=...", k, k)
		case hasValue && v == "":
			return invalid("option %s has an empty value", k)
		case seen[k] && !o.repeat:
			return invalid("option %s given twice", k)
		}
		seen[k] = true
		if err := o.set(v); err != nil {
			return err
		}
	}
	return nil
}

const (
	addDeviceUsage    = "want add block PATH [ro] [id=NAME]"
	addInterfaceUsage = "want add NAME [addr=CIDR]... [mac=MAC] [mtu=N]"
	addRouteUsage     = "want add DEST [via=GW] dev=NAME"
)

// parseAddDevice parses the arguments of `add block PATH [ro] [id=NAME]`.
// ro also takes ro=true|false, as the list shows it.
func parseAddDevice(args []string) (sandbox.DeviceConfig, error) {
	var cfg sandbox.DeviceConfig
	if len(args) < 2 {
		return cfg, invalid("add: missing arguments: %s", addDeviceUsage)
	}
	if args[0] != "block" {
		return cfg, invalid("device kind %q: want block", args[0])
	}
	cfg.Kind = args[0]
	if !filepath.IsAbs(args[1]) {
		return cfg, invalid("path %q: want an absolute path", args[1])
	}
	cfg.Path = args[1]
	err := parseOptions(addDeviceUsage, args[2:], map[string]option{
		"ro": {flag: true, set: func(v string) error {
			switch v {
			case "", "true":
				cfg.ReadOnly = true
			case "false":
				cfg.ReadOnly = false
			default:
				return invalid("ro=%s: want ro, ro=true or ro=false", v)
			}
			return nil
		}},
		"id": {set: func(v string) error {
			if err := sandbox.ValidID(v); err != nil {
				return err
			}
			cfg.ID = v
			return nil
		}},
	})
	return cfg, err
}

// parseRemoveDevice parses `remove NAME`.
func parseRemoveDevice(args []string) (string, error) {
	if len(args) != 1 {
		return "", invalid("want remove NAME")
	}
	return args[0], sandbox.ValidID(args[0])
}

// ifnameMax is the longest Linux interface name (IFNAMSIZ-1).
const ifnameMax = 15

// checkIfname accepts what the Linux kernel does as a network interface
// name (dev_valid_name): 1 to 15 bytes, not . or .., no '/', ':' or
// blanks. '=' is refused too, so a missing name is not taken for one.
func checkIfname(name string) error {
	switch {
	case name == "":
		return invalid("empty interface name")
	case len(name) > ifnameMax:
		return invalid("interface name %q: longer than %d bytes", name, ifnameMax)
	case name == "." || name == "..":
		return invalid("interface name %q", name)
	case strings.ContainsAny(name, "/:= \t\n\v\f\r"):
		return invalid("interface name %q: holds '/', ':', '=' or a blank", name)
	}
	return nil
}

// parseAddInterface parses `add NAME [addr=CIDR]... [mac=MAC] [mtu=N]`.
func parseAddInterface(args []string) (sandbox.NICConfig, error) {
	var cfg sandbox.NICConfig
	if len(args) == 0 || strings.Contains(args[0], "=") {
		return cfg, invalid("add: missing NAME: %s", addInterfaceUsage)
	}
	if err := checkIfname(args[0]); err != nil {
		return cfg, err
	}
	cfg.Name = args[0]
	err := parseOptions(addInterfaceUsage, args[1:], map[string]option{
		"addr": {repeat: true, set: func(v string) error {
			if _, _, err := net.ParseCIDR(v); err != nil {
				return invalid("addr=%s: want an address with prefix length, e.g. 192.168.77.2/24", v)
			}
			cfg.Addrs = append(cfg.Addrs, v)
			return nil
		}},
		"mac": {set: func(v string) error {
			hw, err := net.ParseMAC(v)
			switch {
			case err != nil || len(hw) != 6:
				return invalid("mac=%s: want an Ethernet address, e.g. 02:00:00:00:00:01", v)
			case hw[0]&1 != 0:
				return invalid("mac=%s: a multicast address", v)
			}
			cfg.MAC = hw.String()
			return nil
		}},
		"mtu": {set: func(v string) error {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n < 68 {
				return invalid("mtu=%s: want 68 to 65535", v)
			}
			cfg.MTU = int(n)
			return nil
		}},
	})
	return cfg, err
}

// parseRemoveInterface parses `remove NAME`.
func parseRemoveInterface(args []string) (string, error) {
	if len(args) != 1 {
		return "", invalid("want remove NAME")
	}
	return args[0], checkIfname(args[0])
}

// parseDest parses a route destination: `default` or a network in CIDR
// form without host bits, returned in canonical form so that `del`
// matches the list.
func parseDest(s string) (dest string, v4 bool, err error) {
	if s == "default" {
		return s, false, nil
	}
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return "", false, invalid("destination %q: want default or a network, e.g. 10.1.0.0/16", s)
	}
	if !ip.Equal(n.IP) {
		return "", false, invalid("destination %s has host bits set: want %s", s, n)
	}
	return n.String(), ip.To4() != nil, nil
}

// parseAddRoute parses `add DEST [via=GW] dev=NAME`.
func parseAddRoute(args []string) (sandbox.Route, error) {
	var r sandbox.Route
	if len(args) == 0 || strings.Contains(args[0], "=") {
		return r, invalid("add: missing DEST: %s", addRouteUsage)
	}
	dest, v4, err := parseDest(args[0])
	if err != nil {
		return r, err
	}
	r.Dest = dest
	err = parseOptions(addRouteUsage, args[1:], map[string]option{
		"via": {set: func(v string) error {
			ip := net.ParseIP(v)
			if ip == nil {
				return invalid("via=%s: want an IP address", v)
			}
			if dest != "default" && (ip.To4() != nil) != v4 {
				return invalid("via=%s: not of the address family of %s", v, dest)
			}
			r.Via = ip.String()
			return nil
		}},
		"dev": {set: func(v string) error {
			if err := checkIfname(v); err != nil {
				return err
			}
			r.Dev = v
			return nil
		}},
	})
	if err != nil {
		return r, err
	}
	if r.Dev == "" {
		return r, invalid("add %s: missing dev=NAME: %s", dest, addRouteUsage)
	}
	return r, nil
}

// parseDelRoute parses `del DEST`.
func parseDelRoute(args []string) (string, error) {
	if len(args) != 1 {
		return "", invalid("want del DEST")
	}
	dest, _, err := parseDest(args[0])
	return dest, err
}
