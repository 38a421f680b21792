package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/katafs/katafs/sandbox"
)

// settings are the daemon's knobs: defaults, then --config FILE, then flags.
type settings struct {
	StateDir    string        `json:"state_dir"`
	QEMU        string        `json:"qemu"`
	Kernel      string        `json:"kernel"`
	Initrd      string        `json:"initrd"`
	Accel       string        `json:"accel"`
	ProbeFile   string        `json:"accel_cache"`
	MemoryMiB   int           `json:"memory_mib"`
	CPUs        int           `json:"cpus"`
	BootTimeout time.Duration `json:"boot_timeout"`
	LogLevel    string        `json:"log_level"`
	FuseDebug   bool          `json:"fuse_debug"`
	SpoolLimit  string        `json:"spool_limit"`
	Ports       int           `json:"hotplug_ports"`
	Store       string        `json:"store"`
	QEMUArgs    []string      `json:"qemu_args"`
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseSize reads 64M, 512K, 1G or a plain number of bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional K, M or G", s)
	}
	return n * mult, nil
}

func defaults() settings {
	kernel, initrd := guestImage()
	return settings{
		StateDir: "/var/lib/katafs", QEMU: "qemu-system-x86_64",
		Kernel: kernel, Initrd: initrd, Accel: "auto",
		ProbeFile: "/var/cache/katafs/accel.json",
		MemoryMiB: 256, CPUs: 1, BootTimeout: 90 * time.Second, LogLevel: "info",
		SpoolLimit: "64M", Ports: 8, Store: "fs",
	}
}

// guestImage finds the kernel and initrd: next to the binary's repo
// (bin/../build/guest), else the installed location.
func guestImage() (string, string) {
	dirs := []string{"/usr/share/katafs/guest"}
	if exe, err := os.Executable(); err == nil {
		dirs = append([]string{filepath.Join(filepath.Dir(exe), "..", "build", "guest")}, dirs...)
	}
	for _, d := range dirs {
		// The uncompressed kernel boots ~150 ms sooner under TCG (QEMU
		// enters it through its PVH note); the bzImage is the fallback.
		for _, k := range []string{"vmlinux", "vmlinuz"} {
			if _, err := os.Stat(filepath.Join(d, k)); err == nil {
				return filepath.Join(d, k), filepath.Join(d, "initrd.img")
			}
		}
	}
	return filepath.Join(dirs[0], "vmlinuz"), filepath.Join(dirs[0], "initrd.img")
}

// parseFlags reads --config first, so that flags given too win over it.
func parseFlags(name string, args []string) (settings, *flag.FlagSet, error) {
	s := defaults()
	var cfgFile string
	for i, a := range args {
		if a == "--config" || a == "-config" {
			if i+1 < len(args) {
				cfgFile = args[i+1]
			}
		} else if v, ok := cutPrefix(a, "--config=", "-config="); ok {
			cfgFile = v
		}
	}
	if cfgFile != "" {
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			return s, nil, err
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return s, nil, fmt.Errorf("config %s: %v", cfgFile, err)
		}
	}
	fl := flag.NewFlagSet("katafs "+name, flag.ContinueOnError)
	fl.String("config", cfgFile, "JSON file with these settings (keys: state_dir, qemu, kernel, initrd, accel, accel_cache, memory_mib, cpus, boot_timeout, log_level, spool_limit, hotplug_ports, store, qemu_args)")
	fl.StringVar(&s.StateDir, "state-dir", s.StateDir, "where metadata, logs and sockets live")
	fl.StringVar(&s.QEMU, "qemu", s.QEMU, "QEMU binary")
	fl.StringVar(&s.Kernel, "kernel", s.Kernel, "guest kernel")
	fl.StringVar(&s.Initrd, "initrd", s.Initrd, "guest initrd (agent as /init)")
	fl.StringVar(&s.Accel, "accel", s.Accel, "auto (probe KVM for real, else TCG), kvm or tcg")
	fl.StringVar(&s.ProbeFile, "accel-cache", s.ProbeFile, "where the KVM probe's answer is cached")
	fl.IntVar(&s.MemoryMiB, "memory", s.MemoryMiB, "default guest memory, MiB")
	fl.IntVar(&s.CPUs, "cpus", s.CPUs, "default guest CPUs")
	fl.DurationVar(&s.BootTimeout, "boot-timeout", s.BootTimeout, "how long a VM may take to answer")
	fl.StringVar(&s.LogLevel, "log-level", s.LogLevel, "debug, info, warn or error")
	fl.BoolVar(&s.FuseDebug, "fuse-debug", s.FuseDebug, "log every FUSE request")
	fl.StringVar(&s.SpoolLimit, "spool-limit", s.SpoolLimit, "output kept per process stream (K, M, G); past it the oldest bytes are dropped")
	fl.StringVar(&s.Store, "store", s.Store, "metadata backend: fs or leveldb (recorded in the state directory; katafs store migrate converts)")
	fl.IntVar(&s.Ports, "hotplug-ports", s.Ports, "PCIe root ports each VM reserves for disks and NICs (past them: ENOSPC)")
	qemuArgs := stringList(s.QEMUArgs)
	fl.Var(&qemuArgs, "qemu-arg", "extra QEMU argument, repeatable; {rundir} is the VM's run directory (debugging, benchmarks)")
	if err := fl.Parse(args); err != nil {
		return s, nil, err
	}
	s.QEMUArgs = qemuArgs
	if _, err := parseSize(s.SpoolLimit); err != nil {
		return s, nil, fmt.Errorf("--spool-limit: %v", err)
	}
	lvl, err := logrus.ParseLevel(s.LogLevel)
	if err != nil {
		return s, nil, err
	}
	logrus.SetLevel(lvl)
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	return s, fl, nil
}

func cutPrefix(a string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if len(a) > len(p) && a[:len(p)] == p {
			return a[len(p):], true
		}
	}
	return "", false
}

func (s settings) managerOptions() sandbox.Options {
	limit, _ := parseSize(s.SpoolLimit) // checked in parseFlags
	return sandbox.Options{
		SpoolLimit: limit, QEMUArgs: s.QEMUArgs, HotplugPorts: s.Ports,
		StateDir: s.StateDir, QEMU: s.QEMU, Kernel: s.Kernel, Initrd: s.Initrd,
		Accel: s.Accel, ProbeFile: s.ProbeFile, BootTimeout: s.BootTimeout,
		MemoryMiB: s.MemoryMiB, CPUs: s.CPUs,
		Log: logrus.NewEntry(logrus.StandardLogger()),
	}
}
