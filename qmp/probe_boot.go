package qmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// bootKVMGuest boots o.Kernel and o.Initrd under KVM in a temporary run
// directory and waits up to o.Timeout for o.Marker on the console. The VM
// is always killed and the directory removed.
func bootKVMGuest(ctx context.Context, o ProbeOptions) (bool, string, error) {
	return bootGuest(ctx, o, "kvm")
}

// bootGuest is bootKVMGuest with the accelerator as a parameter, so that the
// same path can be tested under TCG.
func bootGuest(ctx context.Context, o ProbeOptions, accel string) (bool, string, error) {
	dir, err := os.MkdirTemp("", "kfprobe")
	if err != nil {
		return false, "", err
	}
	defer os.RemoveAll(dir)
	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	name := strings.ToUpper(accel)
	hung := fmt.Sprintf("%s guest did not reach userspace within %v", name, o.Timeout)

	begin := time.Now()
	cfg := Config{
		Name:   accel + "probe-" + strconv.Itoa(os.Getpid()),
		Binary: o.Binary,
		Kernel: o.Kernel,
		Initrd: o.Initrd,
		Accel:  accel,
		RunDir: dir,
	}
	p, err := Start(pctx, cfg)
	switch {
	case ctx.Err() != nil:
		return false, "", ctx.Err()
	case pctx.Err() != nil:
		return false, hung, nil
	case err != nil:
		return false, "QEMU with " + name + " did not start: " + err.Error(), nil
	}
	defer p.Kill()

	found, err := waitForMarker(pctx, cfg.ConsoleLog(), []byte(o.Marker), p.Done())
	switch {
	case found:
		return true, fmt.Sprintf("%s guest reached userspace in %v", name, time.Since(begin).Round(time.Millisecond)), nil
	case ctx.Err() != nil:
		return false, "", ctx.Err()
	case errors.Is(err, errExited):
		return false, fmt.Sprintf("QEMU exited under %s before the guest reached userspace (%v); qemu.log: %s; console: %s",
			name, p.ExitError(), LogTail(cfg.LogFile(), 3), LogTail(cfg.ConsoleLog(), 3)), nil
	case pctx.Err() != nil:
		return false, hung, nil
	default:
		return false, "", err
	}
}

var errExited = errors.New("qemu exited")

// waitForMarker polls a growing log file for marker until it appears, exited
// closes (errExited) or ctx ends.
func waitForMarker(ctx context.Context, path string, marker []byte, exited <-chan struct{}) (bool, error) {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var window []byte // unmatched tail, so a marker split across reads is seen
	buf := make([]byte, 32<<10)
	delay := 5 * time.Millisecond
	check := func() (bool, error) {
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				return false, nil // QEMU has not created it yet
			}
		}
		for {
			n, err := f.Read(buf)
			window = append(window, buf[:n]...)
			if bytes.Contains(window, marker) {
				return true, nil
			}
			if keep := len(marker) - 1; len(window) > keep {
				window = append(window[:0], window[len(window)-keep:]...)
			}
			if err == io.EOF || n == 0 {
				return false, nil
			}
			if err != nil {
				return false, err
			}
		}
	}
	for {
		if ok, err := check(); ok || err != nil {
			return ok, err
		}
		t := time.NewTimer(delay)
		select {
		case <-exited:
			t.Stop()
			ok, err := check() // it may have printed the marker and then died
			if ok || err != nil {
				return ok, err
			}
			return false, errExited
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}
