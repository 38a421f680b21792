package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// ModuleLoader loads kernel modules with their dependencies, in the
// order modules.dep gives, each at most once across calls.
type ModuleLoader struct {
	dir    string
	deps   *ModuleDeps
	load   func(path string) error
	loaded map[string]bool // paths
}

// NewModuleLoader reads dir/modules.dep; load loads one .ko file
// (FinitModule in the VM).
func NewModuleLoader(dir string, load func(path string) error) (*ModuleLoader, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("agent: modules: %w", err)
	}
	defer f.Close()
	md, err := ParseModulesDep(f)
	if err != nil {
		return nil, fmt.Errorf("agent: modules: %w", err)
	}
	return &ModuleLoader{dir: dir, deps: md, load: load, loaded: map[string]bool{}}, nil
}

// Load loads the named modules and their dependencies. Names that
// modules.dep lacks are logged and skipped: they are built in or not
// shipped, and whatever needs them fails later with its own error.
func (l *ModuleLoader) Load(names []string) error {
	order, missing, err := l.deps.LoadOrder(names)
	if err != nil {
		return fmt.Errorf("agent: modules: %w", err)
	}
	for _, m := range missing {
		logrus.WithField("module", m).Warn("agent: module not in modules.dep, skipped")
	}
	for _, p := range order {
		if l.loaded[p] {
			continue
		}
		if err := l.load(filepath.Join(l.dir, p)); err != nil {
			return fmt.Errorf("agent: load module %s: %w", ModuleName(p), err)
		}
		l.loaded[p] = true
	}
	return nil
}

// ReadModuleList reads a module list file (/etc/katafs/modules).
func ReadModuleList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agent: modules: %w", err)
	}
	defer f.Close()
	names, err := ParseModuleList(f)
	if err != nil {
		return nil, fmt.Errorf("agent: modules: %w", err)
	}
	return names, nil
}

// FinitModule loads one .ko file; EEXIST (already loaded) is success.
func FinitModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}
