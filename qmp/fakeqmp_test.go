package qmp

import (
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// fakeQMP is a scripted QMP server on a unix socket: it greets, accepts
// qmp_capabilities, then hands every command to handle, which answers
// through send (replies and events alike, in any order, from any goroutine).
type fakeQMP struct {
	t      *testing.T
	path   string
	ln     net.Listener
	greet  bool
	handle func(f *fakeQMP, cmd fakeCmd)

	mu   sync.Mutex
	conn net.Conn
	cmds []fakeCmd
	done chan struct{}
}

type fakeCmd struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
}

const fakeGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": ["oob"]}}`

// newFakeQMP starts a server for a single connection.
func newFakeQMP(t *testing.T, handle func(f *fakeQMP, cmd fakeCmd)) *fakeQMP {
	t.Helper()
	f := &fakeQMP{t: t, path: filepath.Join(shortDir(t), "qmp.sock"), greet: true,
		handle: handle, done: make(chan struct{})}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	t.Cleanup(func() {
		ln.Close()
		f.close()
		<-f.done
	})
	return f
}

func (f *fakeQMP) serve() *fakeQMP {
	go func() {
		defer close(f.done)
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conn = c
		f.mu.Unlock()
		if !f.greet {
			buf := make([]byte, 1)
			c.Read(buf) // hold the connection until the client or the test closes it
			return
		}
		f.send(fakeGreeting)
		dec := json.NewDecoder(c)
		for {
			var cmd fakeCmd
			if err := dec.Decode(&cmd); err != nil {
				return
			}
			f.mu.Lock()
			f.cmds = append(f.cmds, cmd)
			f.mu.Unlock()
			if cmd.Execute == "qmp_capabilities" {
				f.send(`{"return": {}}`)
				continue
			}
			f.handle(f, cmd)
		}
	}()
	return f
}

// send writes one line to the client.
func (f *fakeQMP) send(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Write([]byte(line + "\r\n"))
	}
}

func (f *fakeQMP) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		f.conn.Close()
	}
}

func (f *fakeQMP) received() []fakeCmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCmd(nil), f.cmds...)
}

func fakeEvent(name, data string) string {
	return `{"event": "` + name + `", "data": ` + data + `, "timestamp": {"seconds": 1700000000, "microseconds": 250}}`
}

// statusHandler answers query-status with status, and everything else with {}.
func statusHandler(status string) func(f *fakeQMP, cmd fakeCmd) {
	return func(f *fakeQMP, cmd fakeCmd) {
		if cmd.Execute == "query-status" {
			f.send(`{"return": {"status": "` + status + `", "singlestep": false, "running": ` +
				map[bool]string{true: "true", false: "false"}[status == "running"] + `}}`)
			return
		}
		f.send(`{"return": {}}`)
	}
}
