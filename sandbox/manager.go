package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/metastore"
	"github.com/katafs/katafs/qmp"
)

// Version is katafs's own version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Options configure a Manager. Zero values take the documented defaults.
type Options struct {
	StateDir  string          // default /var/lib/katafs
	Store     metastore.Store // default: the filesystem backend under StateDir/meta
	QEMU      string          // default qemu-system-x86_64
	Kernel    string          // guest kernel
	Initrd    string          // guest initrd (the agent is its /init)
	Accel     string          // auto (default), kvm or tcg
	ProbeFile string          // accel probe cache, default /var/cache/katafs/accel.json
	// BootTimeout bounds the wait for the agent's first answer.
	BootTimeout time.Duration // default 90s (TCG on a loaded host is slow)
	MemoryMiB   int           // default 256
	SpoolLimit  int64         // bytes kept per process stream, default 64 MiB
	// HotplugPorts is how many PCIe root ports each VM reserves for disks
	// and NICs (default 8); past them an add is ENOSPC.
	HotplugPorts int
	// QEMUArgs are appended to every VM's command line; {rundir} becomes
	// the VM's run directory. For debugging and benchmarks.
	QEMUArgs []string
	CPUs     int // default 1
	Log      *logrus.Entry
}

// Manager is CreateSandbox, FetchSandbox and ListSandboxes.
type Manager struct {
	opts  Options
	store metastore.Store
	log   *logrus.Entry
	accel *accelResolver

	mu    sync.Mutex
	live  map[string]*Sandbox
	inUse map[string]bool // IDs being created or fetched right now
}

// NewManager checks opts and starts resolving the accelerator in the
// background so the first create does not pay for the probe alone.
func NewManager(opts Options) (*Manager, error) {
	if opts.StateDir == "" {
		opts.StateDir = "/var/lib/katafs"
	}
	if opts.QEMU == "" {
		opts.QEMU = "qemu-system-x86_64"
	}
	if opts.Accel == "" {
		opts.Accel = "auto"
	}
	if opts.ProbeFile == "" {
		opts.ProbeFile = "/var/cache/katafs/accel.json"
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 90 * time.Second
	}
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 256
	}
	if opts.CPUs == 0 {
		opts.CPUs = 1
	}
	if opts.HotplugPorts == 0 {
		opts.HotplugPorts = 8
	}
	if opts.SpoolLimit == 0 {
		opts.SpoolLimit = 64 << 20
	}
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	switch opts.Accel {
	case "auto", "kvm", "tcg":
	default:
		return nil, fmt.Errorf("%w: accel %q: want auto, kvm or tcg", ErrInvalid, opts.Accel)
	}
	for _, f := range []string{opts.Kernel, opts.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("guest image: %w (run 'make guest')", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(opts.StateDir, "vm"), 0o700); err != nil {
		return nil, err
	}
	if opts.Store == nil {
		st, err := metastore.NewFS(filepath.Join(opts.StateDir, "meta"))
		if err != nil {
			return nil, err
		}
		opts.Store = st
	}
	m := &Manager{
		opts:  opts,
		store: opts.Store,
		log:   opts.Log,
		live:  map[string]*Sandbox{},
		inUse: map[string]bool{},
	}
	m.accel = newAccelResolver(qmp.ProbeOptions{
		Binary:    opts.QEMU,
		Kernel:    opts.Kernel,
		Initrd:    opts.Initrd,
		Marker:    agent.BootMarker,
		CacheFile: opts.ProbeFile,
		Requested: opts.Accel,
	}, m.log)
	m.accel.start()
	return m, nil
}

// Accel waits for the accelerator probe and returns its result.
func (m *Manager) Accel(ctx context.Context) (qmp.ProbeResult, error) {
	return m.accel.get(ctx)
}

// NewID returns a fresh sandbox ID.
func (m *Manager) NewID() string {
	var b [6]byte
	rand.Read(b[:])
	return "sb-" + hex.EncodeToString(b[:])
}

// Version reports katafs, agent protocol and QEMU versions.
func (m *Manager) Version(ctx context.Context) VersionInfo {
	v := VersionInfo{Katafs: Version, AgentProtocol: agent.ProtocolVersion, QEMU: "unknown"}
	if q, err := qmp.Version(ctx, m.opts.QEMU); err == nil {
		v.QEMU = q
	}
	return v
}

// List is ListSandboxes: every sandbox with metadata, running or not.
func (m *Manager) List(ctx context.Context) ([]string, error) {
	names, err := m.store.List("sandboxes")
	if err != nil {
		return nil, err
	}
	ids := names[:0]
	for _, n := range names {
		// Only a sandbox with a config exists; a bare directory is the
		// leftover of a delete and is not listed.
		if ValidID(n) != nil {
			continue
		}
		if _, err := m.store.Load(configKey(n)); err == nil {
			ids = append(ids, n)
		}
	}
	return ids, nil
}

// claim marks id as being worked on, so two creates (or a create and a
// fetch) of one ID never race. The caller must call m.unclaim(id).
func (m *Manager) claim(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[id] != nil || m.inUse[id] {
		return fmt.Errorf("%w: sandbox %s", ErrExists, id)
	}
	m.inUse[id] = true
	return nil
}

func (m *Manager) unclaim(id string, s *Sandbox) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.inUse, id)
	if s != nil {
		m.live[id] = s
	}
}

func (m *Manager) forget(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, id)
}

// Create is CreateSandbox: it boots the VM and returns once the agent
// answered, with the sandbox ready. If ctx ends first, everything made so
// far is undone.
func (m *Manager) Create(ctx context.Context, cfg Config) (*Sandbox, error) {
	if err := m.complete(&cfg); err != nil {
		return nil, err
	}
	if err := m.claim(cfg.ID); err != nil {
		return nil, err
	}
	var made *Sandbox
	defer func() { m.unclaim(cfg.ID, made) }()
	if _, err := m.store.Load(configKey(cfg.ID)); err == nil {
		return nil, fmt.Errorf("%w: sandbox %s", ErrExists, cfg.ID)
	}
	s := newSandbox(m, cfg)
	if err := s.create(ctx); err != nil {
		return nil, err
	}
	made = s
	return s, nil
}

// complete fills defaults and refuses values this build cannot serve.
func (m *Manager) complete(cfg *Config) error {
	if err := ValidID(cfg.ID); err != nil {
		return err
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = m.opts.MemoryMiB
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = m.opts.CPUs
	}
	if cfg.MemoryMiB < 64 || cfg.MemoryMiB > 65536 {
		return fmt.Errorf("%w: memory=%d: want 64 to 65536 MiB", ErrInvalid, cfg.MemoryMiB)
	}
	if cfg.CPUs < 1 || cfg.CPUs > 64 {
		return fmt.Errorf("%w: cpus=%d: want 1 to 64", ErrInvalid, cfg.CPUs)
	}
	if err := oneOf("factory", &cfg.Factory, "new", []string{"auto", "new"}, []string{"template", "cache"}); err != nil {
		return err
	}
	if cfg.Factory == "auto" {
		cfg.Factory = "new"
	}
	if err := oneOf("proxy", &cfg.Proxy, "builtin", []string{"builtin"}, []string{"kata", "none", "noop"}); err != nil {
		return err
	}
	if err := oneOf("shim", &cfg.Shim, "builtin", []string{"builtin"}, []string{"kata", "noop"}); err != nil {
		return err
	}
	if cfg.NetNS != "" {
		if _, err := os.Stat(cfg.NetNS); err != nil {
			return fmt.Errorf("%w: netns=%s: %v", ErrInvalid, cfg.NetNS, err)
		}
	}
	if cfg.Created.IsZero() {
		cfg.Created = time.Now().UTC().Truncate(time.Second)
	}
	return nil
}

// oneOf checks *v against the values served now and those the interface
// names but this build does not serve yet, so the message says which.
func oneOf(key string, v *string, def string, served, later []string) error {
	if *v == "" {
		*v = def
		return nil
	}
	for _, s := range served {
		if *v == s {
			return nil
		}
	}
	for _, s := range later {
		if *v == s {
			return fmt.Errorf("%w: %s=%s is not available in this build (available: %v)", ErrInvalid, key, *v, served)
		}
	}
	return fmt.Errorf("%w: %s=%q: want one of %v", ErrInvalid, key, *v, append(served, later...))
}

// Fetch is FetchSandbox: the live sandbox, or one loaded from metadata and
// reattached to its QEMU and agent (after a daemon restart).
func (m *Manager) Fetch(ctx context.Context, id string) (*Sandbox, error) {
	if err := ValidID(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	s := m.live[id]
	busy := m.inUse[id]
	m.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if busy {
		return nil, fmt.Errorf("%w: sandbox %s is being created", ErrNotFound, id)
	}
	var cfg Config
	if err := loadJSON(m.store, configKey(id), &cfg); err != nil {
		return nil, err
	}
	if err := m.claim(id); err != nil {
		// Someone else got there first: use theirs.
		m.mu.Lock()
		s = m.live[id]
		m.mu.Unlock()
		if s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("%w: sandbox %s is being loaded", ErrNotFound, id)
	}
	var made *Sandbox
	defer func() { m.unclaim(id, made) }()
	s = newSandbox(m, cfg)
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	made = s
	return s, nil
}

// Recover runs once when a daemon starts: sandboxes whose create never
// finished (the daemon died meanwhile) are removed with their QEMU, so
// none is ever listed half made.
func (m *Manager) Recover(ctx context.Context) {
	ids, err := m.List(ctx)
	if err != nil {
		m.log.WithError(err).Warn("recover: listing sandboxes")
		return
	}
	for _, id := range ids {
		var rec record
		if loadJSON(m.store, recordKey(id), &rec) == nil && rec.State == stateCreating {
			m.Fetch(ctx, id) // load finds it creating and undoes it
		}
	}
}

// ReleaseAll releases every live sandbox: their VMs keep running, and a
// later Fetch finds them again.
func (m *Manager) ReleaseAll(ctx context.Context) {
	m.mu.Lock()
	all := make([]*Sandbox, 0, len(m.live))
	for _, s := range m.live {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		if err := s.Release(ctx); err != nil && !errors.Is(err, ErrNotFound) {
			m.log.WithField("sandbox", s.ID()).WithError(err).Warn("release failed")
		}
	}
}
