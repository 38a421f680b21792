package sandbox

import (
	"fmt"
	"regexp"
	"time"
)

// State is a sandbox's (or container's) life-cycle state.
type State string

const (
	StateReady   State = "ready"
	StateRunning State = "running"
	StatePaused  State = "paused"
	StateStopped State = "stopped"
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidID reports whether id is an acceptable sandbox, container or
// process name; the error wraps ErrInvalid.
func ValidID(id string) error {
	if !idRE.MatchString(id) {
		if len(id) > 64 {
			return fmt.Errorf("%w: id of %d characters, at most 64", ErrInvalid, len(id))
		}
		return fmt.Errorf("%w: bad id %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", ErrInvalid, id)
	}
	return nil
}

// Config is what a sandbox is created from; it is saved in the metastore
// and served as the sandbox's `config` file.
type Config struct {
	ID        string    `json:"id"`
	MemoryMiB int       `json:"memory_mib"`
	CPUs      int       `json:"cpus"`
	Factory   string    `json:"factory"`
	NetNS     string    `json:"netns,omitempty"`
	Proxy     string    `json:"proxy"`
	Shim      string    `json:"shim"`
	Created   time.Time `json:"created"`
}

// Status is a sandbox's status file, in the order it is rendered.
type Status struct {
	ID         string    `json:"id"`
	State      State     `json:"state"`
	Pid        int       `json:"pid"`
	Created    time.Time `json:"created"`
	Factory    string    `json:"factory"`
	Proxy      string    `json:"proxy"`
	Shim       string    `json:"shim"`
	Agent      string    `json:"agent"` // ok | unreachable
	MemoryMiB  int       `json:"memory"`
	CPUs       int       `json:"cpus"`
	Containers int       `json:"containers"`
	// Reason says why a sandbox is stopped, when it stopped by itself.
	Reason string `json:"reason,omitempty"`
}

// VersionInfo is served as /kata/version.
type VersionInfo struct {
	Katafs        string
	AgentProtocol string
	QEMU          string
}
