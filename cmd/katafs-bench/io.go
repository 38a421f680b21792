package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/katafs/katafs/agent"
)

// RawPortArgs are the daemon flags that give every VM a second
// virtio-serial port, bench.raw, on a socket in its run directory: the
// guest writes straight into it to measure the port's raw throughput.
var RawPortArgs = []string{
	"--qemu-arg", "-chardev", "--qemu-arg", "socket,id=raw,path={rundir}/raw.sock,server=on,wait=off",
	"--qemu-arg", "-device", "--qemu-arg", "virtserialport,bus=vser0.0,chardev=raw,name=bench.raw",
}

// ioBench measures stdout throughput through the whole path (guest
// process, agent, yamux, spool, FUSE, cat) against the raw port, in the
// same VM, rounds interleaved.
func ioBench(mnt, id string, size, rounds int) error {
	sb := filepath.Join(mnt, "sandboxes", id)
	ctrs := filepath.Join(sb, "containers")
	if err := writeFile(filepath.Join(ctrs, "ctl"), "create io -- sleep 1000000\n"); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(ctrs, "io", "ctl"), "start\n"); err != nil {
		return err
	}
	sock, err := rawSocket(filepath.Join(sb, "status"))
	if err != nil {
		return err
	}
	procs := filepath.Join(ctrs, "io", "procs")
	var raw, full []float64
	for i := 0; i < rounds; i++ {
		d, err := rawRound(procs, sock, fmt.Sprintf("raw%d", i), size)
		if err != nil {
			return fmt.Errorf("raw port: %w", err)
		}
		raw = append(raw, mbps(size, d))
		d, err = fullRound(procs, fmt.Sprintf("full%d", i), size)
		if err != nil {
			return fmt.Errorf("through katafs: %w", err)
		}
		full = append(full, mbps(size, d))
		fmt.Printf("round %d: raw port %.1f MB/s, stdout through katafs to cat %.1f MB/s\n", i+1, raw[i], full[i])
	}
	r, f := medianF(raw), medianF(full)
	fmt.Printf("stdout throughput median %.1f MB/s vs raw virtio-serial port %.1f MB/s: ratio %.2f (target >= 0.8; %d MB each)\n",
		f, r, f/r, size/1000000)

	var exec []time.Duration
	for i := 0; i < 20; i++ {
		d, err := execLatency(procs, fmt.Sprintf("lat%d", i))
		if err != nil {
			return fmt.Errorf("exec latency: %w", err)
		}
		exec = append(exec, d)
	}
	fmt.Printf("exec latency     median %v from the write to procs/ctl to the first byte of echo's output\n",
		median(exec).Round(10*time.Microsecond))
	return nil
}

// rawSocket finds bench.raw's socket on QEMU's command line.
func rawSocket(status string) (string, error) {
	b, err := os.ReadFile(status)
	if err != nil {
		return "", err
	}
	var pid string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "pid" {
			pid = f[1]
		}
	}
	cmd, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		return "", err
	}
	for _, a := range bytes.Split(cmd, []byte{0}) {
		for _, kv := range strings.Split(string(a), ",") {
			if strings.HasPrefix(kv, "path=") && strings.HasSuffix(kv, "/raw.sock") {
				return strings.TrimPrefix(kv, "path="), nil
			}
		}
	}
	return "", fmt.Errorf("no bench.raw port: start the daemon with %s", strings.Join(RawPortArgs, " "))
}

// rawRound: the guest writes size bytes straight into the port; timed
// from the exec until the host has read them all.
func rawRound(procs, sock, pid string, size int) (time.Duration, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	cmd := fmt.Sprintf("exec %s -- sh -c 'head -c %d /dev/zero > $(ls /dev/vport*p2 | head -1)'\n", pid, size)
	if err := writeFile(filepath.Join(procs, "ctl"), cmd); err != nil {
		return 0, err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.CopyN(io.Discard, c, int64(size)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// fullRound: the same bytes to stdout, read with a plain read loop (cat)
// through the mount to the end.
func fullRound(procs, pid string, size int) (time.Duration, error) {
	start := time.Now()
	if err := writeFile(filepath.Join(procs, "ctl"), fmt.Sprintf("exec %s -- head -c %d /dev/zero\n", pid, size)); err != nil {
		return 0, err
	}
	f, err := os.Open(filepath.Join(procs, pid, "stdout"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.CopyBuffer(io.Discard, f, make([]byte, 128<<10))
	if err != nil {
		return 0, err
	}
	if n != int64(size) {
		return 0, fmt.Errorf("read %d bytes, want %d", n, size)
	}
	return time.Since(start), nil
}

func execLatency(procs, pid string) (time.Duration, error) {
	start := time.Now()
	if err := writeFile(filepath.Join(procs, "ctl"), "exec "+pid+" -- echo x\n"); err != nil {
		return 0, err
	}
	f, err := os.Open(filepath.Join(procs, pid, "stdout"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 1)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// checkRTT is the agent's bare Check round trip on a VM of its own.
func checkRTT(dir, kernel, initrd, accel string) (time.Duration, error) {
	var rtts []time.Duration
	err := withBareVM(dir, kernel, initrd, accel, func(c *agent.Client) error {
		for i := 0; i < 50; i++ {
			t := time.Now()
			if err := c.Check(context.Background()); err != nil {
				return err
			}
			rtts = append(rtts, time.Since(t))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return median(rtts), nil
}

func mbps(n int, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

func medianF(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
