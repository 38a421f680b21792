package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

const (
	defaultProbeTimeout = 12 * time.Second
	defaultKVMDevice    = "/dev/kvm"
)

// ProbeOptions configures ProbeAccel.
type ProbeOptions struct {
	Binary, Kernel, Initrd string
	// Marker is the console line the guest prints once userspace runs.
	Marker    string
	Timeout   time.Duration // default 12s
	CacheFile string        // empty: no cache
	Requested string        // "auto" (or empty), "kvm" or "tcg"

	// Test seams: the device checked and the boot probe itself.
	kvmDevice string
	boot      bootProbe
}

// bootProbe boots a guest with KVM and says whether it reached userspace,
// and why not. An error means no decision could be made (the caller's ctx
// ended, no kernel to boot): it is not cached.
type bootProbe func(ctx context.Context, o ProbeOptions) (reached bool, reason string, err error)

// ProbeResult is the accelerator to use, and why.
type ProbeResult struct {
	Accel     string // "kvm" or "tcg"
	KVMUsable bool
	Reason    string
	Cached    bool // the answer came from CacheFile
}

func (o ProbeOptions) withDefaults() ProbeOptions {
	if o.Binary == "" {
		o.Binary = DefaultBinary
	}
	if o.Timeout == 0 {
		o.Timeout = defaultProbeTimeout
	}
	if o.Requested == "" {
		o.Requested = "auto"
	}
	if o.kvmDevice == "" {
		o.kvmDevice = defaultKVMDevice
	}
	if o.boot == nil {
		o.boot = bootKVMGuest
	}
	return o
}

// ProbeAccel decides between KVM and TCG. A forced choice is returned as is
// (forcing kvm without a usable /dev/kvm is an error). For auto, the
// decision comes from booting the guest under KVM and watching its console
// for Marker: a /dev/kvm that opens is not enough, since on some hosts a KVM
// guest hangs right after the kernel starts. The answer is cached under a
// key of the QEMU version, the guest kernel and initrd (path, size, mtime),
// the marker and the host kernel release.
func ProbeAccel(ctx context.Context, o ProbeOptions) (ProbeResult, error) {
	o = o.withDefaults()
	switch o.Requested {
	case "tcg":
		return ProbeResult{Accel: "tcg", Reason: "tcg requested"}, nil
	case "kvm":
		if err := kvmOpenable(o.kvmDevice); err != nil {
			return ProbeResult{}, fmt.Errorf("kvm requested but %w", err)
		}
		return ProbeResult{Accel: "kvm", KVMUsable: true, Reason: "kvm requested"}, nil
	case "auto":
	default:
		return ProbeResult{}, fmt.Errorf("%w: accelerator %q is not auto, kvm or tcg", ErrInvalid, o.Requested)
	}
	// Checked before the cache: cheap, and it keeps a cached "kvm" from
	// outliving the device.
	if err := kvmOpenable(o.kvmDevice); err != nil {
		return ProbeResult{Accel: "tcg", Reason: err.Error()}, nil
	}
	if o.Marker == "" {
		return ProbeResult{}, fmt.Errorf("%w: accelerator probe: no console marker", ErrInvalid)
	}
	key, err := makeProbeKey(ctx, o)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("accelerator probe: %w", err)
	}
	if res, ok := loadProbeCache(o.CacheFile, key); ok {
		res.Cached = true
		return res, nil
	}
	reached, reason, err := o.boot(ctx, o)
	if err != nil {
		return ProbeResult{}, fmt.Errorf("accelerator probe: %w", err)
	}
	res := ProbeResult{Accel: "tcg", Reason: reason}
	if reached {
		res = ProbeResult{Accel: "kvm", KVMUsable: true, Reason: reason}
	}
	if err := saveProbeCache(o.CacheFile, key, res); err != nil {
		logrus.WithError(err).WithField("file", o.CacheFile).Warn("cannot cache the accelerator probe")
	}
	return res, nil
}

// kvmOpenable tells whether the KVM device exists and opens read-write.
func kvmOpenable(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s not usable: %w", dev, err)
	}
	unix.Close(fd)
	return nil
}

type fileID struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
}

type probeKey struct {
	QEMU       string `json:"qemu"`
	Kernel     fileID `json:"kernel"`
	Initrd     fileID `json:"initrd"`
	Marker     string `json:"marker"`
	HostKernel string `json:"host_kernel"`
}

func makeProbeKey(ctx context.Context, o ProbeOptions) (probeKey, error) {
	var k probeKey
	var err error
	if k.QEMU, err = Version(ctx, o.Binary); err != nil {
		return k, err
	}
	if o.Kernel == "" {
		return k, fmt.Errorf("%w: auto needs a guest kernel to boot", ErrInvalid)
	}
	if k.Kernel, err = statID(o.Kernel); err != nil {
		return k, err
	}
	if o.Initrd != "" {
		if k.Initrd, err = statID(o.Initrd); err != nil {
			return k, err
		}
	}
	k.Marker = o.Marker
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return k, err
	}
	k.HostKernel = unix.ByteSliceToString(u.Release[:])
	return k, nil
}

func statID(path string) (fileID, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fileID{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fileID{}, err
	}
	return fileID{Path: abs, Size: fi.Size(), MTime: fi.ModTime().UnixNano()}, nil
}

type probeCache struct {
	Key       probeKey  `json:"key"`
	Accel     string    `json:"accel"`
	KVMUsable bool      `json:"kvm_usable"`
	Reason    string    `json:"reason"`
	ProbedAt  time.Time `json:"probed_at"`
}

func loadProbeCache(path string, key probeKey) (ProbeResult, bool) {
	if path == "" {
		return ProbeResult{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ProbeResult{}, false
	}
	var c probeCache
	if err := json.Unmarshal(b, &c); err != nil || c.Key != key || (c.Accel != "kvm" && c.Accel != "tcg") {
		return ProbeResult{}, false
	}
	return ProbeResult{Accel: c.Accel, KVMUsable: c.KVMUsable, Reason: c.Reason}, true
}

// saveProbeCache replaces the cache file atomically.
func saveProbeCache(path string, key probeKey, r ProbeResult) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(probeCache{Key: key, Accel: r.Accel, KVMUsable: r.KVMUsable,
		Reason: r.Reason, ProbedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
