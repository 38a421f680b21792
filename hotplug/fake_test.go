package hotplug

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// call is one QMP command the fake received.
type call struct {
	cmd  string
	args map[string]any
	file bool
}

func (c call) String() string {
	b, _ := json.Marshal(c.args)
	s := c.cmd + " " + string(b)
	if c.file {
		s += " +fd"
	}
	return s
}

// fakeMonitor is a scripted stand-in for QEMU's QMP: it keeps the devices,
// block nodes, netdevs and named fds that a real QEMU would, answers with
// QEMU 7.2's error messages, and emits DEVICE_DELETED on device_del unless
// told not to.
type fakeMonitor struct {
	mu      sync.Mutex
	calls   []call
	fail    map[string]error // command -> error to return instead of running it
	busy    int              // device_del answers "guest is busy" this many times first
	noEvent bool             // device_del never completes
	onCall  func(cmd string) // called after each command (tests cancel ctx here)

	devices map[string]bool
	nodes   map[string]bool
	netdevs map[string]bool
	fds     map[string]bool
	subs    map[chan Event]bool
}

func newFake() *fakeMonitor {
	return &fakeMonitor{
		fail:    map[string]error{},
		devices: map[string]bool{},
		nodes:   map[string]bool{},
		netdevs: map[string]bool{},
		fds:     map[string]bool{},
		subs:    map[chan Event]bool{},
	}
}

func (f *fakeMonitor) Execute(ctx context.Context, cmd string, args, out any) error {
	return f.run(ctx, cmd, args, false)
}

func (f *fakeMonitor) ExecuteWithFile(ctx context.Context, cmd string, args, out any, file *os.File) error {
	if file == nil {
		return errors.New("nil file")
	}
	return f.run(ctx, cmd, args, true)
}

func (f *fakeMonitor) Events() (<-chan Event, func()) {
	ch := make(chan Event, 16)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.subs[ch] {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

func (f *fakeMonitor) emit(e Event) {
	for ch := range f.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

func (f *fakeMonitor) run(ctx context.Context, cmd string, args any, file bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var a map[string]any
	b, _ := json.Marshal(args)
	json.Unmarshal(b, &a)
	f.mu.Lock()
	f.calls = append(f.calls, call{cmd, a, file})
	err := f.apply(cmd, a)
	hook := f.onCall
	f.mu.Unlock()
	if hook != nil {
		hook(cmd)
	}
	return err
}

func str(a map[string]any, k string) string { s, _ := a[k].(string); return s }

// apply runs a command against the fake's state, with f.mu held.
func (f *fakeMonitor) apply(cmd string, a map[string]any) error {
	if err, ok := f.fail[cmd]; ok {
		return err
	}
	switch cmd {
	case "blockdev-add":
		n := str(a, "node-name")
		if f.nodes[n] {
			return fmt.Errorf("qmp blockdev-add: GenericError: Duplicate nodes with node-name='%s'", n)
		}
		f.nodes[n] = true
	case "blockdev-del":
		n := str(a, "node-name")
		if !f.nodes[n] {
			return fmt.Errorf("qmp blockdev-del: GenericError: Failed to find node with node-name='%s'", n)
		}
		delete(f.nodes, n)
	case "device_add":
		id := str(a, "id")
		if f.devices[id] {
			return fmt.Errorf("qmp device_add: GenericError: Duplicate device ID '%s'", id)
		}
		f.devices[id] = true
	case "device_del":
		id := str(a, "id")
		if !f.devices[id] {
			return fmt.Errorf("qmp device_del: DeviceNotFound: Device '%s' not found", id)
		}
		if f.busy > 0 {
			f.busy--
			return errors.New("qmp device_del: GenericError: Hot-unplug failed: guest is busy (power indicator blinking)")
		}
		if !f.noEvent {
			delete(f.devices, id)
			// The backend's event first, as QEMU sends it, then an
			// unrelated device's, then ours.
			f.emit(Event{Name: "DEVICE_DELETED", Data: map[string]any{"path": "/machine/peripheral/" + id + "/virtio-backend"}})
			f.emit(Event{Name: "DEVICE_DELETED", Data: map[string]any{"device": "other", "path": "/machine/peripheral/other"}})
			f.emit(Event{Name: "DEVICE_DELETED", Data: map[string]any{"device": id, "path": "/machine/peripheral/" + id}})
		}
	case "getfd":
		f.fds[str(a, "fdname")] = true
	case "closefd":
		n := str(a, "fdname")
		if !f.fds[n] {
			return fmt.Errorf("qmp closefd: GenericError: File descriptor named '%s' not found", n)
		}
		delete(f.fds, n)
	case "netdev_add":
		fd := str(a, "fd")
		if !f.fds[fd] {
			return fmt.Errorf("qmp netdev_add: GenericError: File descriptor named '%s' has not been found", fd)
		}
		delete(f.fds, fd) // consumed
		id := str(a, "id")
		if f.netdevs[id] {
			return fmt.Errorf("qmp netdev_add: GenericError: Duplicate ID '%s' for netdev", id)
		}
		f.netdevs[id] = true
	case "netdev_del":
		id := str(a, "id")
		if !f.netdevs[id] {
			return fmt.Errorf("qmp netdev_del: DeviceNotFound: Device '%s' not found", id)
		}
		delete(f.netdevs, id)
	default:
		return fmt.Errorf("qmp %s: CommandNotFound: The command %s has not been found", cmd, cmd)
	}
	return nil
}

// seq is the list of commands received, "cmd" each.
func (f *fakeMonitor) seq() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, c := range f.calls {
		s = append(s, c.cmd)
	}
	return s
}

func (f *fakeMonitor) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// empty fails the test if the fake holds anything.
func (f *fakeMonitor) empty(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.devices)+len(f.nodes)+len(f.netdevs)+len(f.fds) != 0 {
		t.Errorf("left behind: devices %v nodes %v netdevs %v fds %v", f.devices, f.nodes, f.netdevs, f.fds)
	}
}

func (f *fakeMonitor) callsString() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, c := range f.calls {
		s = append(s, c.String())
	}
	return strings.Join(s, "\n")
}
