package sandbox

import (
	"context"
	"encoding/json"
	"syscall"

	"github.com/katafs/katafs/agent"
)

// containerRecord is a container as saved in the metastore, enough to
// serve it again after a daemon restart or crash (reattach) and to create
// it again when a stopped sandbox starts.
type containerRecord struct {
	Config     ContainerConfig       `json:"config"`
	Spec       json.RawMessage       `json:"spec"`
	RootDevice string                `json:"root_device,omitempty"`
	State      State                 `json:"state"`
	Procs      map[string]procRecord `json:"procs"`
}

type procRecord struct {
	TTY  bool        `json:"tty"`
	Pid  int         `json:"pid"`
	Exit *ExitStatus `json:"exit,omitempty"`
	Rows uint16      `json:"rows,omitempty"`
	Cols uint16      `json:"cols,omitempty"`
}

func containersKey(sid string) string     { return "sandboxes/" + sid + "/containers" }
func containerKey(sid, cid string) string { return containersKey(sid) + "/" + cid }

// save records the container; caller holds c.mu.
func (c *Container) save() error {
	r := containerRecord{Config: c.cfg, Spec: c.spec, RootDevice: c.rootDevice, State: c.state,
		Procs: map[string]procRecord{}}
	for id, p := range c.procs {
		p.mu.Lock()
		r.Procs[id] = procRecord{TTY: p.tty, Pid: p.pid, Exit: p.exit, Rows: p.rows, Cols: p.cols}
		p.mu.Unlock()
	}
	if err := saveJSON(c.sb.m.store, containerKey(c.sb.cfg.ID, c.cfg.ID), r); err != nil {
		c.log.WithError(err).Error("saving the container's record")
		return err
	}
	return nil
}

// persist is save for callers that do not hold c.mu.
func (c *Container) persist() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sb.hasContainer(c) {
		c.save()
	}
}

func (s *Sandbox) hasContainer(c *Container) bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.ctrs[c.cfg.ID] == c
}

// loadContainers reads the saved containers of a sandbox.
func (s *Sandbox) loadContainers() ([]containerRecord, error) {
	ids, err := s.m.store.List(containersKey(s.cfg.ID))
	if err != nil {
		return nil, err
	}
	var out []containerRecord
	for _, id := range ids {
		var r containerRecord
		if err := loadJSON(s.m.store, containerKey(s.cfg.ID, id), &r); err != nil {
			s.log.WithError(err).WithField("container", id).Warn("skipping an unreadable container record")
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// reattachContainers serves the containers of a sandbox whose VM a new
// daemon found running: spools reopened, output streams opened again
// (the guest kept what was not yet sent), waits resumed.
func (s *Sandbox) reattachContainers(ctx context.Context, cl *agent.Client) {
	recs, err := s.loadContainers()
	if err != nil {
		s.log.WithError(err).Warn("loading containers")
		return
	}
	for _, r := range recs {
		c := &Container{sb: s, cfg: r.Config, spec: r.Spec, rootDevice: r.RootDevice, state: r.State,
			procs: map[string]*Process{}, log: s.log.WithField("container", r.Config.ID)}
		for id, pr := range r.Procs {
			p, err := c.newProcess(id, pr.TTY)
			if err != nil {
				c.log.WithError(err).WithField("proc", id).Warn("reopening spools")
				continue
			}
			p.pid, p.rows, p.cols = pr.Pid, pr.Rows, pr.Cols
			c.procs[id] = p
			if pr.Exit != nil || cl == nil {
				p.finish(exitOr(pr.Exit))
				continue
			}
			if err := p.attach(ctx, cl); err != nil {
				c.log.WithError(err).WithField("proc", id).Warn("reattaching output")
				p.finish(ExitStatus{Code: -1})
				continue
			}
			if pr.Pid != 0 {
				var onExit func()
				if id == InitProcess {
					onExit = c.initExited
				}
				p.started(cl, pr.Pid, onExit)
			}
		}
		s.cmu.Lock()
		s.ctrs[c.cfg.ID] = c
		s.cmu.Unlock()
		c.log.Info("container reattached")
	}
}

func exitOr(e *ExitStatus) ExitStatus {
	if e != nil {
		return *e
	}
	return ExitStatus{Code: -1}
}

// finish marks a process ended without a live stream: its spools hold
// all there will be.
func (p *Process) finish(e ExitStatus) {
	p.stdout.MarkDone()
	p.stderr.MarkDone()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit == nil {
		p.exit = &e
		close(p.exited)
	}
}

// recreateContainers creates again, not started, the containers of a
// sandbox whose VM was stopped and booted again.
func (s *Sandbox) recreateContainers(ctx context.Context) {
	recs, err := s.loadContainers()
	if err != nil {
		return
	}
	for _, r := range recs {
		s.m.store.Delete(containerKey(s.cfg.ID, r.Config.ID))
		if err := s.CreateContainer(ctx, r.Config); err != nil {
			s.log.WithError(err).WithField("container", r.Config.ID).Warn("recreating a container after start")
		}
	}
}

// vmGone ends every process of every container: the VM they ran in is
// gone, which killed them; readers of their output and wait return.
func (s *Sandbox) vmGone() {
	s.cmu.Lock()
	all := make([]*Container, 0, len(s.ctrs))
	for _, c := range s.ctrs {
		all = append(all, c)
	}
	s.cmu.Unlock()
	for _, c := range all {
		c.mu.Lock()
		c.state = StateStopped
		for _, p := range c.procs {
			p.finish(ExitStatus{Code: 128 + int(syscall.SIGKILL), Signal: "KILL"})
		}
		c.save()
		c.mu.Unlock()
	}
}
