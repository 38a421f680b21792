package qmp

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// AgentPortName is the virtio-serial port the guest agent listens on.
const AgentPortName = "agent.channel.0"

// AgentPortID is the QEMU device id of the agent's virtserialport, named in
// its VSERPORT_CHANGE events.
const AgentPortID = "agentport"

// BaseKernelArgs starts every guest kernel command line.
const BaseKernelArgs = "console=ttyS0 panic=1 quiet"

const (
	// DefaultBinary is the QEMU used when Config.Binary is empty.
	DefaultBinary       = "qemu-system-x86_64"
	defaultMemoryMiB    = 256
	defaultCPUs         = 1
	defaultHotplugPorts = 8
	// maxSocketPath is sun_path (108 bytes) less its terminating NUL.
	maxSocketPath = 107
	// memBackendID names the RAM backend object when MemoryPath is set.
	memBackendID = "mem0"
)

// Config describes one QEMU VM. The zero values of the optional fields get
// the defaults documented below.
type Config struct {
	Name       string // sandbox id: -name guest=NAME,process=katafs-NAME; Attach matches it
	Binary     string // default "qemu-system-x86_64"
	Kernel     string // optional: without it QEMU runs firmware only (tests with -S)
	Initrd     string // needs Kernel
	KernelArgs string // appended to BaseKernelArgs
	MemoryMiB  int    // default 256
	CPUs       int    // default 1
	Accel      string // "kvm" or "tcg"; empty means "tcg"
	RunDir     string // qmp.sock, agent.sock, console.log, qemu.log, qemu.pid
	MemoryPath string // optional: guest RAM in this file, shared (VM templates)
	// HotplugPorts is how many pcie-root-ports (rp0..rpN-1) are reserved for
	// hotplug: 0 means the default 8, a negative number means none.
	HotplugPorts int
	Incoming     string // optional -incoming URI
	ExtraArgs    []string
}

// QMPSocket is the path of the QMP control socket.
func (c Config) QMPSocket() string { return filepath.Join(c.RunDir, "qmp.sock") }

// AgentSocket is the path of the socket behind the agent's virtio-serial port.
func (c Config) AgentSocket() string { return filepath.Join(c.RunDir, "agent.sock") }

// ConsoleLog is the file the guest serial console is written to.
func (c Config) ConsoleLog() string { return filepath.Join(c.RunDir, "console.log") }

// LogFile receives QEMU's own stdout and stderr.
func (c Config) LogFile() string { return filepath.Join(c.RunDir, "qemu.log") }

// PidFile is where QEMU writes its pid.
func (c Config) PidFile() string { return filepath.Join(c.RunDir, "qemu.pid") }

// withDefaults fills in the optional fields.
func (c Config) withDefaults() Config {
	if c.Binary == "" {
		c.Binary = DefaultBinary
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = defaultMemoryMiB
	}
	if c.CPUs == 0 {
		c.CPUs = defaultCPUs
	}
	if c.Accel == "" {
		c.Accel = "tcg"
	}
	if c.HotplugPorts == 0 {
		c.HotplugPorts = defaultHotplugPorts
	}
	return c
}

// Validate reports the first problem with c (after defaults), wrapping ErrInvalid.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: qemu config: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if c.Name == "" {
		return bad("empty name")
	}
	if strings.ContainsFunc(c.Name, func(r rune) bool {
		return r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return bad("name %q has a comma, a space or a control character", c.Name)
	}
	if c.RunDir == "" {
		return bad("empty run directory")
	}
	for _, s := range []string{c.QMPSocket(), c.AgentSocket()} {
		if len(s) > maxSocketPath {
			return bad("socket path %s is %d bytes, the limit is %d", s, len(s), maxSocketPath)
		}
	}
	if c.Accel != "kvm" && c.Accel != "tcg" {
		return bad("accel %q is neither kvm nor tcg", c.Accel)
	}
	if c.MemoryMiB < 0 || c.CPUs < 0 {
		return bad("negative memory or cpus")
	}
	if c.Kernel == "" && (c.Initrd != "" || c.KernelArgs != "") {
		return bad("initrd or kernel args without a kernel")
	}
	return nil
}

// Args is QEMU's argv without the binary.
func (c Config) Args() []string {
	c = c.withDefaults()
	mem := strconv.Itoa(c.MemoryMiB) + "M"
	machine := "q35"
	if c.MemoryPath != "" {
		machine += ",memory-backend=" + memBackendID
	}
	cpu := "max"
	if c.Accel == "kvm" {
		cpu = "host"
	}
	a := []string{
		"-name", "guest=" + c.Name + ",process=katafs-" + c.Name,
		"-machine", machine,
		"-accel", c.Accel,
		"-cpu", cpu,
		"-m", mem,
		"-smp", strconv.Itoa(c.CPUs),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		// A guest panic reaches QMP as GUEST_PANICKED, then QEMU exits.
		"-device", "pvpanic", "-action", "panic=shutdown",
	}
	if c.MemoryPath != "" {
		a = append(a, "-object", "memory-backend-file,id="+memBackendID+",size="+mem+
			",mem-path="+optEscape(c.MemoryPath)+",share=on")
	}
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
		a = append(a, "-append", strings.TrimSpace(BaseKernelArgs+" "+c.KernelArgs))
	}
	a = append(a,
		"-chardev", "file,id=console,path="+optEscape(c.ConsoleLog()),
		"-serial", "chardev:console",
		"-chardev", "socket,id=qmp,path="+optEscape(c.QMPSocket())+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=agent,path="+optEscape(c.AgentSocket())+",server=on,wait=off",
		"-device", "virtserialport,bus=vser0.0,chardev=agent,id="+AgentPortID+",name="+AgentPortName,
	)
	for i := 0; i < c.HotplugPorts; i++ {
		a = append(a, "-device", fmt.Sprintf("pcie-root-port,id=%s,bus=pcie.0,chassis=%d,port=%d",
			RootPortID(i), i+1, i+1))
	}
	if c.Incoming != "" {
		a = append(a, "-incoming", c.Incoming)
	}
	a = append(a, "-pidfile", c.PidFile())
	return append(a, c.ExtraArgs...)
}

// RootPortID is the id of the i-th pcie-root-port reserved for hotplug.
func RootPortID(i int) string { return "rp" + strconv.Itoa(i) }

// optEscape escapes a value inside a QEMU key=value,... option: a comma is
// written twice.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
