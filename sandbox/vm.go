package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/qmp"
)

// vm is one incarnation of a sandbox's VM: the QEMU process, its monitor
// and the agent session. A stopped and restarted sandbox gets a new vm.
type vm struct {
	proc *qmp.Process
	mon  *qmp.Monitor
	// agent is replaced when watchAgent reconnects; amu guards the swap.
	amu      sync.Mutex
	agent    *agent.Client
	shutdown string // QMP SHUTDOWN's reason, once QEMU said it
	runDir   string
	// gone is closed once the sandbox stops watching this VM.
	gone chan struct{}
	// released is closed to stop watching without touching the VM.
	released chan struct{}
}

// stopWatching ends the sandbox's watch of v; the caller then owns v.
// It does not wait for the watcher, which may be blocked on Sandbox.mu
// that the caller holds; the watcher finds s.vm != v and leaves v alone.
func (v *vm) stopWatching() {
	if v != nil && v.released != nil {
		close(v.released)
	}
}

// runDir is short whatever the ID, to keep unix socket paths under 108 bytes.
func (m *Manager) runDir(id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(m.opts.StateDir, "vm", hex.EncodeToString(h[:6]))
}

// files names the files of a sandbox's VM (sockets, logs, pidfile); qmp
// owns their layout in the run directory.
func (m *Manager) files(id string) qmp.Config {
	return qmp.Config{Name: id, RunDir: m.runDir(id)}
}

func (m *Manager) qemuConfig(cfg Config, accel string) qmp.Config {
	run := m.runDir(cfg.ID)
	extra := make([]string, len(m.opts.QEMUArgs))
	for i, a := range m.opts.QEMUArgs {
		extra[i] = strings.ReplaceAll(a, "{rundir}", run)
	}
	return qmp.Config{
		ExtraArgs: extra,
		Name:      cfg.ID,
		Binary:    m.opts.QEMU,
		Kernel:    m.opts.Kernel,
		Initrd:    m.opts.Initrd,
		MemoryMiB: cfg.MemoryMiB,
		CPUs:      cfg.CPUs,
		Accel:     accel,
		RunDir:    run,

		HotplugPorts: m.opts.HotplugPorts,
	}
}

// bootStep is one named step of booting a VM; the list is a variable so
// tests can replace or reorder steps.
type bootStep struct {
	name string
	run  func(ctx context.Context, b *boot) error
}

type boot struct {
	m    *Manager
	cfg  Config
	qcfg qmp.Config
	v    *vm
	// onStarted runs once QEMU's pid is known, to record it durably.
	onStarted func(pid int) error
	// events carries QMP events from the qmp step on, until the boot ends.
	events      <-chan qmp.Event
	unsubscribe func()
}

// portOpenFallback is how long the agent step waits for the guest to open
// its port before it connects anyway (the event could have come before the
// subscription, on a very fast boot).
var portOpenFallback = 15 * time.Second

// waitAgentPort waits until the guest opened the agent's port (QMP
// VSERPORT_CHANGE), so the host connects once, to a listening agent: a
// connection made earlier is sometimes never answered and costs a whole
// connect attempt. It gives up quietly and lets Connect retry.
func (b *boot) waitAgentPort(ctx context.Context) {
	if b.events == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, portOpenFallback)
	defer cancel()
	t := time.Now()
	if err := qmp.WaitPortOpen(wctx, b.events, qmp.AgentPortID); err != nil {
		b.m.log.WithField("sandbox", b.cfg.ID).WithError(err).Warn("no port-open event; connecting anyway")
		return
	}
	b.m.log.WithField("sandbox", b.cfg.ID).Debugf("guest opened the agent port after %v", time.Since(t))
}

var bootSteps = []bootStep{
	{"accel", func(ctx context.Context, b *boot) error {
		res, err := b.m.Accel(ctx)
		if err != nil {
			return fmt.Errorf("choosing an accelerator: %w", err)
		}
		b.qcfg = b.m.qemuConfig(b.cfg, res.Accel)
		return os.RemoveAll(b.qcfg.RunDir)
	}},
	{"qemu", func(ctx context.Context, b *boot) error {
		p, err := qmp.Start(ctx, b.qcfg)
		if err != nil {
			return err
		}
		b.v.proc, b.v.runDir = p, b.qcfg.RunDir
		return b.onStarted(p.Pid)
	}},
	{"qmp", func(ctx context.Context, b *boot) error {
		mon, err := qmp.Dial(ctx, b.qcfg.QMPSocket())
		if err != nil {
			return err
		}
		mon.CloseWhen(b.v.proc.Done())
		b.v.mon = mon
		// Subscribe now, long before the guest can open its port.
		b.events, b.unsubscribe = mon.Subscribe()
		return nil
	}},
	{"agent", func(ctx context.Context, b *boot) error {
		ctx, cancel := context.WithTimeout(ctx, b.m.opts.BootTimeout)
		defer cancel()
		b.waitAgentPort(ctx)
		c, err := connectAgent(ctx, b.v, b.qcfg.AgentSocket())
		if err != nil {
			return fmt.Errorf("agent: %w%s", err, consoleTail(b.qcfg.ConsoleLog()))
		}
		b.v.agent = c
		return nil
	}},
	{"guest-sandbox", func(ctx context.Context, b *boot) error {
		return b.v.agent.CreateSandbox(ctx, b.cfg.ID, b.cfg.ID)
	}},
}

// connectAgent waits for the agent, and gives up at once if QEMU exits.
func connectAgent(ctx context.Context, v *vm, sock string) (*agent.Client, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if v.proc != nil {
		go func() {
			select {
			case <-v.proc.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	c, err := agent.Connect(ctx, agent.UnixDialer{Path: sock})
	if err != nil && v.proc != nil {
		select {
		case <-v.proc.Done():
			return nil, fmt.Errorf("qemu exited while the guest booted")
		default:
		}
	}
	return c, err
}

// bootVM runs the boot steps; on failure it tears down what it made.
func (m *Manager) bootVM(ctx context.Context, cfg Config, onStarted func(pid int) error) (*vm, error) {
	b := &boot{m: m, cfg: cfg, v: &vm{gone: make(chan struct{})}, onStarted: onStarted}
	start := time.Now()
	defer func() {
		if b.unsubscribe != nil {
			b.unsubscribe()
		}
	}()
	for _, st := range bootSteps {
		t := time.Now()
		if err := st.run(ctx, b); err != nil {
			b.v.destroy(context.Background())
			if ctx.Err() != nil {
				return nil, fmt.Errorf("boot interrupted at step %s: %w", st.name, ctx.Err())
			}
			return nil, fmt.Errorf("%w: boot step %s: %v", ErrVM, st.name, err)
		}
		m.log.WithField("sandbox", cfg.ID).Debugf("boot step %s took %v", st.name, time.Since(t))
	}
	m.log.WithField("sandbox", cfg.ID).Infof("VM ready in %v", time.Since(start).Round(time.Millisecond))
	return b.v, nil
}

// attachVM finds the QEMU of a sandbox made by an earlier daemon.
func (m *Manager) attachVM(ctx context.Context, cfg Config, rec record) (*vm, error) {
	p, err := qmp.Attach(rec.Pid, cfg.ID)
	if err != nil {
		return nil, err
	}
	v := &vm{proc: p, runDir: rec.RunDir, gone: make(chan struct{})}
	qcfg := m.qemuConfig(cfg, rec.Accel)
	if v.mon, err = qmp.Dial(ctx, qcfg.QMPSocket()); err != nil {
		p.Release()
		return nil, fmt.Errorf("qmp: %w", err)
	}
	v.mon.CloseWhen(p.Done())
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if rec.State != StatePaused {
		// A paused guest cannot answer; its agent is reached on resume.
		if v.agent, err = connectAgent(actx, v, qcfg.AgentSocket()); err != nil {
			m.log.WithField("sandbox", cfg.ID).WithError(err).Warn("agent unreachable after reattach")
		}
	}
	return v, nil
}

// destroy stops the VM for good: a polite guest shutdown, then QMP quit,
// then SIGKILL; and removes its run directory.
func (v *vm) destroy(ctx context.Context) {
	if v == nil {
		return
	}
	if cl := v.agentClient(); cl != nil {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cl.DestroySandbox(actx)
		cancel()
		cl.Close()
	}
	if v.mon != nil {
		if v.proc != nil {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			v.mon.Quit(qctx)
			cancel()
		}
		v.mon.Close()
	}
	if v.proc != nil {
		select {
		case <-v.proc.Done():
		case <-time.After(3 * time.Second):
		}
		v.proc.Kill()
	}
}

// release drops the host's hold on the VM and leaves it running.
func (v *vm) release() {
	if v == nil {
		return
	}
	if cl := v.agentClient(); cl != nil {
		cl.Close()
	}
	if v.mon != nil {
		v.mon.Close()
	}
	if v.proc != nil {
		v.proc.Release()
	}
}

func consoleTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "; console: " + strings.Join(lines, " | ")
}
