package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/relay"
)

// eventLog is a sandbox's events file (Monitor): one `TIME KIND detail`
// line per event, appended to a spool so that `cat events` blocks and
// follows, and a late reader gets what was kept. Kinds: created, started,
// stopped, paused, resumed, released, deleted, qemu-exited, guest-panicked,
// agent-unreachable, agent-reachable, and qmp for every raw QMP event.
type eventLog struct {
	sp *relay.Spool
	mu sync.Mutex
	w  *io.PipeWriter
}

// eventsLimit is how much of a sandbox's event history is kept.
const eventsLimit = 4 << 20

func (m *Manager) openEvents(id string) (*eventLog, error) {
	sp, err := relay.OpenSpool(filepath.Join(m.opts.StateDir, "spool", id, "events"), eventsLimit)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go sp.Fill(pr)
	return &eventLog{sp: sp, w: pw}, nil
}

// emit appends one event; it never blocks on readers (the spool drains
// the pipe whatever they do).
func (e *eventLog) emit(kind, detail string) {
	if e == nil {
		return
	}
	line := time.Now().UTC().Format(time.RFC3339Nano) + " " + kind
	if detail != "" {
		line += " " + detail
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.w.Write([]byte(line + "\n"))
}

// close ends the stream: readers at its end get EOF.
func (e *eventLog) close() {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.w.Close()
	e.mu.Unlock()
	e.sp.Wait(context.Background())
}

// Events is the sandbox's events stream (nil if it could not be opened).
func (s *Sandbox) Events() *relay.Spool {
	if s.events == nil {
		return nil
	}
	return s.events.sp
}

// watchQMP turns the VM's QMP events into event lines until the monitor
// closes.
func (s *Sandbox) watchQMP(v *vm) {
	ch, cancel := v.mon.Subscribe()
	defer cancel()
	for e := range ch {
		data, _ := json.Marshal(e.Data)
		switch e.Name {
		case "GUEST_PANICKED":
			s.events.emit("guest-panicked", string(data))
		case "SHUTDOWN":
			if r, ok := e.Data["reason"].(string); ok {
				v.amu.Lock()
				v.shutdown = r
				v.amu.Unlock()
			}
		}
		s.events.emit("qmp", e.Name+" "+string(data))
	}
}

// watchAgent notes the agent session dying while the VM lives, and
// connects again until it answers (or the VM goes or is released).
func (s *Sandbox) watchAgent(v *vm) {
	for {
		cl := v.agentClient()
		if cl == nil {
			return
		}
		select {
		case <-cl.Done():
		case <-v.released:
			return
		case <-v.proc.Done():
			return
		}
		s.events.emit("agent-unreachable", "session closed")
		s.log.Warn("agent unreachable; reconnecting")
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := connectAgent(ctx, v, s.m.files(s.cfg.ID).AgentSocket())
			cancel()
			select {
			case <-v.released:
				if c != nil {
					c.Close()
				}
				return
			case <-v.proc.Done():
				return
			default:
			}
			if err == nil {
				v.setAgent(c)
				s.events.emit("agent-reachable", "")
				s.log.Info("agent reachable again")
				break
			}
			time.Sleep(time.Second)
		}
	}
}

func (v *vm) agentClient() *agent.Client {
	v.amu.Lock()
	defer v.amu.Unlock()
	return v.agent
}

func (v *vm) setAgent(c *agent.Client) {
	v.amu.Lock()
	v.agent = c
	v.amu.Unlock()
}

func stateEvent(op Op) string {
	switch op {
	case OpStart:
		return "started"
	case OpStop:
		return "stopped"
	case OpPause:
		return "paused"
	case OpResume:
		return "resumed"
	}
	return string(op)
}
