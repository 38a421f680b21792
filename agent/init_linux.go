package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Where RunInit finds its inputs in the initrd (guest/build.sh writes them).
const (
	moduleListFile = "/etc/katafs/modules"
	modulesRoot    = "/lib/modules"
)

var (
	// portWaitTimeout bounds the wait for the virtio-serial port to show
	// up after the modules are loaded; past it the VM powers off with the
	// reason on the console.
	portWaitTimeout = 60 * time.Second
	// destroyGrace is how long after DestroySandbox the agent waits for
	// the host to hang up before powering off: the reply must leave first.
	destroyGrace = 500 * time.Millisecond
)

// initStep is one PID 1 duty. A failing fatal step powers the VM off; any
// other failure is printed and boot goes on.
type initStep struct {
	name  string
	fatal bool
	run   func() error
}

// portModules are loaded before the agent serves: what the virtio-serial
// port needs. The rest of /etc/katafs/modules loads while the agent
// already answers (see initState.loadAllModules).
var portModules = []string{"virtio_pci", "virtio_console"}

// initState is what init steps hand on to the rest of RunInit.
type initState struct {
	modules     *ModuleLoader
	modulesDone chan struct{} // closed when loadAllModules is over
}

// waitModules blocks until the background module loading is over
// (whether it worked or not: what a module lacks then fails on its own).
func (st *initState) waitModules(ctx context.Context) error {
	select {
	case <-st.modulesDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// initSteps is the boot sequence of RunInit, in order.
func initSteps(st *initState) []initStep {
	return []initStep{
		{"mount", true, mountAll},
		{"console", false, openConsole},
		// The firmware leaves the cursor mid-line: start a fresh one.
		{"marker", false, func() error { _, err := fmt.Printf("\n%s\n", BootMarker); return err }},
		{"logging", false, setupLogging},
		{"modules", false, st.loadPortModules},
		{"loopback", false, func() error { return LinkUp("lo") }},
	}
}

// RunInit is the agent as PID 1 of the VM: it runs initSteps, reaps
// zombies, and serves the AgentService on the virtio-serial port PortName
// until DestroySandbox. It never returns: it powers the VM off, after
// printing the reason on the console if that is an error.
func RunInit() {
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	st := &initState{modulesDone: make(chan struct{})}
	for _, s := range initSteps(st) {
		err := s.run()
		logrus.WithFields(logrus.Fields{"step": s.name, "uptime": uptime()}).Debug("katafs-agent: init step done")
		if err != nil {
			if s.fatal {
				fatal(fmt.Errorf("%s: %w", s.name, err))
			}
			fmt.Fprintf(os.Stderr, "katafs-agent: %s: %v\n", s.name, err)
		}
	}
	ctx := context.Background()
	reaper := NewReaper()
	go reaper.Run(ctx)

	pctx, cancel := context.WithTimeout(ctx, portWaitTimeout)
	port, err := OpenVirtioPort(pctx, "/sys", "/dev", PortName)
	cancel()
	logrus.WithField("uptime", uptime()).Debug("katafs-agent: port open")
	if err != nil {
		fatal(err)
	}
	logrus.WithField("uptime", uptime()).Info("katafs-agent: serving on " + PortName)
	go st.loadAllModules()

	// Block devices, NICs and image roots need modules still loading
	// (virtio_blk, virtio_net, overlay): they wait for st.waitModules.
	devs := NewDevices(DevicesConfig{Ready: st.waitModules})
	svc := NewService(ServiceConfig{
		SetHostname: SetHostname,
		// Exec servers are children of the reaper: it hands their
		// statuses over.
		Containers: NewRuntime(RuntimeConfig{Spawn: reaper.Spawn, Ready: st.waitModules}),
		Devices:    devs,
		Network:    devs,
	})
	served := make(chan error, 1)
	go func() { served <- ServePort(ctx, port, svc) }()
	select {
	case err := <-served:
		if err != nil {
			fatal(err)
		}
	case <-svc.Destroyed():
		t := time.NewTimer(destroyGrace)
		select {
		case <-served:
		case <-t.C:
		}
	}
	powerOff("sandbox destroyed")
}

// mount is one file system mounted at boot.
type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

var initMounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
	{"shm", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
}

func mountAll() error {
	for _, m := range initMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// openConsole makes /dev/console fds 0, 1 and 2. The kernel already gives
// init the console when the initrd has a /dev/console node; this makes it
// so when it has not.
func openConsole() error {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	for i := 0; i <= 2; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup console to fd %d: %w", i, err)
		}
	}
	return unix.Close(fd)
}

// setupLogging logs to the console; katafs.debug=1 on the kernel command
// line turns on debug messages.
func setupLogging() error {
	logrus.SetOutput(os.Stderr)
	logrus.SetFormatter(&logrus.TextFormatter{DisableColors: true})
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(string(b)) {
		if f == "katafs.debug=1" || f == "katafs.debug" {
			logrus.SetLevel(logrus.DebugLevel)
		}
	}
	return nil
}

func (st *initState) loadPortModules() error {
	rel, err := unameRelease()
	if err != nil {
		return err
	}
	st.modules, err = NewModuleLoader(filepath.Join(modulesRoot, rel), FinitModule)
	if err != nil {
		return err
	}
	return st.modules.Load(portModules)
}

// loadAllModules loads the rest of the module list. It runs beside the
// first host session, since booting is what the host waits for; requests
// that need these modules (block devices, NICs, image roots) wait for it
// with waitModules.
func (st *initState) loadAllModules() {
	defer close(st.modulesDone)
	if st.modules == nil {
		return
	}
	names, err := ReadModuleList(moduleListFile)
	if err == nil {
		err = st.modules.Load(names)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "katafs-agent: modules: %v\n", err)
	}
	logrus.WithField("uptime", uptime()).Debug("katafs-agent: all modules loaded")
}

// uptime is the guest's time since boot, for boot timing in the log.
func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0] + "s"
	}
	return "?"
}

// fatal prints why the agent gives up and powers off: PID 1 must never
// exit silently.
func fatal(err error) {
	fmt.Fprintf(os.Stderr, "katafs-agent: fatal: %v\n", err)
	powerOff("fatal error")
}

// powerOff syncs and powers the VM off, so QEMU exits. If the kernel
// refuses, exiting PID 1 panics the kernel, and with panic=1 and QEMU's
// -no-reboot that too ends QEMU.
func powerOff(reason string) {
	fmt.Fprintf(os.Stderr, "katafs-agent: powering off: %s\n", reason)
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Fprintf(os.Stderr, "katafs-agent: power off: %v; exiting PID 1\n", err)
	os.Exit(1)
}
