package agent

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// ModuleDeps is a parsed modules.dep: for each module name, its .ko path
// (relative to /lib/modules/<release>) and the paths it depends on.
type ModuleDeps struct {
	path map[string]string   // name -> path
	deps map[string][]string // path -> dependency paths, as listed
}

// ParseModulesDep reads modules.dep as written by depmod:
// "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko".
func ParseModulesDep(r io.Reader) (*ModuleDeps, error) {
	md := &ModuleDeps{path: map[string]string{}, deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" {
			return nil, fmt.Errorf("modules.dep line %d: want \"path: deps...\", got %q", n, line)
		}
		md.path[ModuleName(mod)] = mod
		md.deps[mod] = strings.Fields(deps)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.dep: %w", err)
	}
	return md, nil
}

// ModuleName is the kernel's name for a module file or name:
// "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko" and
// "vmw-vsock-virtio-transport" are both "vmw_vsock_virtio_transport".
func ModuleName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// LoadOrder returns the module paths to load, in order, for the wanted
// module names: dependencies first, depth first, each path once. The order
// comes only from modules.dep, since it changes between kernel builds (in
// 6.1.0-57 virtio needs virtio_ring first, in 6.1.0-53 it did not). Names
// that modules.dep does not know (built into this kernel, or not shipped)
// are returned in missing rather than failing the rest.
func (md *ModuleDeps) LoadOrder(wanted []string) (order, missing []string, err error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(p string, chain []string) error
	visit = func(p string, chain []string) error {
		switch state[p] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules.dep: dependency cycle: %s -> %s", strings.Join(chain, " -> "), p)
		}
		state[p] = visiting
		deps, ok := md.deps[p]
		if !ok {
			return fmt.Errorf("modules.dep: %s needs %s, which has no entry", chain[len(chain)-1], p)
		}
		// depmod lists the deepest dependency last and modprobe loads the
		// list from the end; recursing makes the order right either way.
		next := append(chain[:len(chain):len(chain)], p)
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], next); err != nil {
				return err
			}
		}
		state[p] = done
		order = append(order, p)
		return nil
	}
	for _, w := range wanted {
		p, ok := md.path[ModuleName(w)]
		if !ok {
			missing = append(missing, w)
			continue
		}
		if err := visit(p, []string{"(wanted)"}); err != nil {
			return nil, nil, err
		}
	}
	return order, missing, nil
}

// ParseModuleList reads /etc/katafs/modules: one module name per line,
// blank lines and #-comments ignored.
func ParseModuleList(r io.Reader) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("module list: %w", err)
	}
	return names, nil
}
