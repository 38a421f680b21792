package fs

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/katafs/katafs/sandbox"
)

// fakeBackend is an in-memory Backend for tests of the tree. The real
// sandbox layer is tested with VMs elsewhere.
type fakeBackend struct {
	dir string // console files live here

	mu     sync.Mutex
	sbs    map[string]*fakeSandbox
	nextID int
	// hook, when set, runs at the start of Create; an error fails it.
	hook    func(ctx context.Context, cfg sandbox.Config) error
	inHook  map[string]bool
	hookErr map[string]error // what the hook returned, per ID
}

var _ Backend = (*fakeBackend)(nil)

var fakeCreated = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFakeBackend(dir string) *fakeBackend {
	return &fakeBackend{dir: dir, sbs: map[string]*fakeSandbox{}, inHook: map[string]bool{}, hookErr: map[string]error{}}
}

func (b *fakeBackend) Create(ctx context.Context, cfg sandbox.Config) error {
	b.mu.Lock()
	hook := b.hook
	b.mu.Unlock()
	if hook != nil {
		b.mu.Lock()
		b.inHook[cfg.ID] = true
		b.mu.Unlock()
		err := hook(ctx, cfg)
		b.mu.Lock()
		delete(b.inHook, cfg.ID)
		b.hookErr[cfg.ID] = err
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
	switch cfg.Factory {
	case "", "auto", "new", "template", "cache":
	default:
		return fmt.Errorf("%w: factory %q: want auto, new, template or cache", sandbox.ErrInvalid, cfg.Factory)
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 2048
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 1
	}
	if cfg.Factory == "" || cfg.Factory == "auto" {
		cfg.Factory = "new"
	}
	if cfg.Proxy == "" {
		cfg.Proxy = "builtin"
	}
	if cfg.Shim == "" {
		cfg.Shim = "builtin"
	}
	cfg.Created = fakeCreated
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.sbs[cfg.ID]; ok {
		return fmt.Errorf("%w: sandbox %s", sandbox.ErrExists, cfg.ID)
	}
	b.sbs[cfg.ID] = &fakeSandbox{
		b:       b,
		cfg:     cfg,
		state:   sandbox.StateReady,
		console: filepath.Join(b.dir, cfg.ID+".console"),
		done:    make(chan struct{}),
	}
	return nil
}

func (b *fakeBackend) NewID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	return fmt.Sprintf("sb%d", b.nextID)
}

func (b *fakeBackend) List(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id := range b.sbs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func (b *fakeBackend) Sandbox(ctx context.Context, id string) (Sandbox, error) {
	s, err := b.get(id)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (b *fakeBackend) get(id string) (*fakeSandbox, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sbs[id]
	if !ok {
		return nil, fmt.Errorf("%w: sandbox %s", sandbox.ErrNotFound, id)
	}
	return s, nil
}

func (b *fakeBackend) Version(ctx context.Context) sandbox.VersionInfo {
	return sandbox.VersionInfo{Katafs: "0.1.0", AgentProtocol: "1", QEMU: "9.2.0"}
}

// fakeSandbox is a sandbox with the life-cycle rules but no VM.
type fakeSandbox struct {
	b       *fakeBackend
	console string
	done    chan struct{}

	mu    sync.Mutex
	cfg   sandbox.Config
	state sandbox.State
	gone  bool

	fakeContainers // fake_containers_test.go
	fakeHotplug    // fake_hotplug_test.go
}

var _ Sandbox = (*fakeSandbox)(nil)

func (s *fakeSandbox) ID() string             { return s.cfg.ID }
func (s *fakeSandbox) Config() sandbox.Config { return s.cfg }
func (s *fakeSandbox) ConsolePath() string    { return s.console }
func (s *fakeSandbox) Events() Stream         { return nil }
func (s *fakeSandbox) Done() <-chan struct{}  { return s.done }

func (s *fakeSandbox) Status(ctx context.Context) (sandbox.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sandbox.Status{
		ID: s.cfg.ID, State: s.state, Pid: 4242, Created: s.cfg.Created,
		Factory: s.cfg.Factory, Proxy: s.cfg.Proxy, Shim: s.cfg.Shim, Agent: "ok",
		MemoryMiB: s.cfg.MemoryMiB, CPUs: s.cfg.CPUs, Containers: s.count(),
	}, nil
}

// move changes state if it is one of from.
func (s *fakeSandbox) move(verb string, to sandbox.State, from ...sandbox.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range from {
		if s.state == f {
			s.state = to
			return nil
		}
	}
	return fmt.Errorf("%w: %s: sandbox %s is %s", sandbox.ErrBusy, verb, s.cfg.ID, s.state)
}

func (s *fakeSandbox) Start(ctx context.Context) error {
	return s.move("start", sandbox.StateRunning, sandbox.StateReady, sandbox.StateStopped)
}
func (s *fakeSandbox) Stop(ctx context.Context) error {
	return s.move("stop", sandbox.StateStopped, sandbox.StateRunning, sandbox.StatePaused)
}
func (s *fakeSandbox) Pause(ctx context.Context) error {
	return s.move("pause", sandbox.StatePaused, sandbox.StateRunning)
}
func (s *fakeSandbox) Resume(ctx context.Context) error {
	return s.move("resume", sandbox.StateRunning, sandbox.StatePaused)
}
func (s *fakeSandbox) Release(ctx context.Context) error { return nil }

func (s *fakeSandbox) Delete(ctx context.Context) error {
	s.b.mu.Lock()
	delete(s.b.sbs, s.cfg.ID)
	s.b.mu.Unlock()
	s.end()
	return nil
}

// end makes the VM gone: the console stream ends.
func (s *fakeSandbox) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gone {
		s.gone = true
		close(s.done)
	}
}

// blockCreate makes Create of id run fn first (with the request's ctx).
func (b *fakeBackend) blockCreate(id string, fn func(ctx context.Context) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hook = func(ctx context.Context, cfg sandbox.Config) error {
		if cfg.ID != id {
			return nil
		}
		return fn(ctx)
	}
}

// waiting reports whether a Create of id is inside its hook.
func (b *fakeBackend) waiting(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inHook[id]
}

// hookResult is what the hook of id returned, once it has.
func (b *fakeBackend) hookResult(id string) (error, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	err, ok := b.hookErr[id]
	return err, ok
}

func sandboxConfig(id string) sandbox.Config { return sandbox.Config{ID: id} }

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
