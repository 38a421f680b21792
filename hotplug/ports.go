package hotplug

import (
	"fmt"
	"sync"
)

// Ports hands out the free PCIe root ports of one VM. It is safe for
// concurrent use.
type Ports struct {
	mu   sync.Mutex
	ids  []string        // in the order Take hands them out
	used map[string]bool // id -> taken; every known id is a key
}

// NewPorts manages ids (e.g. rp0..rp7), all free.
func NewPorts(ids []string) *Ports {
	p := &Ports{used: make(map[string]bool, len(ids))}
	for _, id := range ids {
		if _, dup := p.used[id]; dup || id == "" {
			continue
		}
		p.ids = append(p.ids, id)
		p.used[id] = false
	}
	return p
}

// Take marks the first free port used and returns it, or ErrNoSpace.
func (p *Ports) Take() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range p.ids {
		if !p.used[id] {
			p.used[id] = true
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: all %d hotplug ports are in use", ErrNoSpace, len(p.ids))
}

// Reserve marks a port used that a device recorded before a daemon restart
// still occupies: ErrInvalid for an unknown port, ErrExists for a taken one.
func (p *Ports) Reserve(id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	used, ok := p.used[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: no hotplug port %q", ErrInvalid, id)
	case used:
		return fmt.Errorf("%w: hotplug port %s is already in use", ErrExists, id)
	}
	p.used[id] = true
	return nil
}

// Free gives a port back. Freeing an unknown or free port does nothing.
func (p *Ports) Free(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.used[id]; ok {
		p.used[id] = false
	}
}

// InUse is how many ports are taken.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, u := range p.used {
		if u {
			n++
		}
	}
	return n
}
