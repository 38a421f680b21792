package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/qmp"
	"github.com/katafs/katafs/sandbox"
)

// runCheck prints what this host can do and fails where katafs cannot run.
func runCheck(args []string) error {
	s, _, err := parseFlags("check", args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fatal := 0
	report := func(ok bool, must bool, what, detail string) {
		mark := "ok  "
		if !ok {
			mark = "no  "
			if must {
				mark = "FAIL"
				fatal++
			}
		}
		fmt.Printf("%s %-8s %s\n", mark, what, detail)
	}

	fmt.Printf("katafs %s, agent protocol %s\n", sandbox.Version, agent.ProtocolVersion)
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
		report(true, true, "fuse", "/dev/fuse opens")
	} else {
		report(false, true, "fuse", err.Error())
	}
	qv, err := qmp.Version(ctx, s.QEMU)
	if err == nil {
		report(true, true, "qemu", s.QEMU+" "+qv)
	} else {
		report(false, true, "qemu", fmt.Sprintf("%s: %v (apt-get install qemu-system-x86)", s.QEMU, err))
	}
	image := true
	for _, p := range []string{s.Kernel, s.Initrd} {
		if _, err := os.Stat(p); err != nil {
			report(false, true, "guest", fmt.Sprintf("%v (run 'make guest')", err))
			image = false
		}
	}
	if image {
		report(true, true, "guest", s.Kernel+", "+s.Initrd)
	}
	if qv != "" && image {
		res, err := qmp.ProbeAccel(ctx, qmp.ProbeOptions{
			Binary: s.QEMU, Kernel: s.Kernel, Initrd: s.Initrd, Marker: agent.BootMarker,
			CacheFile: s.ProbeFile, Requested: "auto",
		})
		if err != nil {
			report(false, true, "accel", err.Error())
		} else {
			cached := ""
			if res.Cached {
				cached = " (cached in " + s.ProbeFile + ")"
			}
			report(res.KVMUsable, false, "kvm", res.Reason+cached)
			report(true, true, "accel", res.Accel+" will be used with --accel auto")
		}
	}
	if _, err := os.Stat("/dev/vhost-vsock"); err == nil {
		report(true, false, "vsock", "/dev/vhost-vsock present")
	} else {
		report(false, false, "vsock", "no /dev/vhost-vsock: the agent is reached over virtio-serial")
	}
	if fatal > 0 {
		return fmt.Errorf("%d check(s) failed: katafs cannot run here", fatal)
	}
	return nil
}

func runVersion(args []string) error {
	s, _, err := parseFlags("version", args)
	if err != nil {
		return err
	}
	qv, err := qmp.Version(context.Background(), s.QEMU)
	if err != nil {
		qv = "unknown (" + err.Error() + ")"
	}
	fmt.Printf("katafs %s\nagent-protocol %s\nqemu %s\n", sandbox.Version, agent.ProtocolVersion, qv)
	return nil
}
