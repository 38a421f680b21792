// Command katafs-bench measures katafs against its baselines, side by side
// in one run, and prints ratios. scripts/bench.sh (make bench) runs it
// against a live mount.
//
//	katafs-bench -mnt /kata -kernel K -initrd I -accel tcg [-rounds 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/katafs/katafs/agent"
	"github.com/katafs/katafs/qmp"
)

func main() {
	mnt := flag.String("mnt", "/kata", "a katafs mount")
	kernel := flag.String("kernel", "build/guest/vmlinuz", "guest kernel")
	initrd := flag.String("initrd", "build/guest/initrd.img", "guest initrd")
	accel := flag.String("accel", "tcg", "accelerator for the bare boot (the one the daemon uses)")
	rounds := flag.Int("rounds", 5, "boots of each kind")
	reads := flag.Int("reads", 2000, "reads of each file")
	flag.StringVar(&netns, "netns", "", "a network namespace of this run's own for the NIC benchmark (none: skipped)")
	flag.Parse()
	if err := run(*mnt, *kernel, *initrd, *accel, *rounds, *reads); err != nil {
		fmt.Fprintln(os.Stderr, "katafs-bench:", err)
		os.Exit(1)
	}
}

func run(mnt, kernel, initrd, accel string, rounds, reads int) error {
	tmp, err := os.MkdirTemp("", "kb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Interleave the kinds so drift on the host hits all alike.
	var bare, bareEvent, create []time.Duration
	for i := 0; i < rounds; i++ {
		d, err := bareBoot(filepath.Join(tmp, fmt.Sprint(i)), kernel, initrd, accel, false)
		if err != nil {
			return fmt.Errorf("bare boot: %w", err)
		}
		bare = append(bare, d)
		d, err = bareBoot(filepath.Join(tmp, fmt.Sprint(i)+"e"), kernel, initrd, accel, true)
		if err != nil {
			return fmt.Errorf("bare boot (event): %w", err)
		}
		bareEvent = append(bareEvent, d)
		id := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
		d, err = katafsCreate(mnt, id)
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if err := writeFile(filepath.Join(mnt, "sandboxes", id, "ctl"), "delete\n"); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		create = append(create, d)
		fmt.Printf("round %d: bare boot %v, bare boot waiting for the port event %v, create %v\n", i+1,
			bare[i].Round(time.Millisecond), bareEvent[i].Round(time.Millisecond), create[i].Round(time.Millisecond))
	}
	mb, me, mc := median(bare), median(bareEvent), median(create)
	fmt.Printf("create-to-ready  median %v vs bare QEMU boot to agent answer %v: ratio %.3f (target <= 1.15)\n",
		mc.Round(time.Millisecond), mb.Round(time.Millisecond), float64(mc)/float64(mb))
	fmt.Printf("                 bare boot that connects on the port-open event (katafs's method) %v: create ratio %.3f\n",
		me.Round(time.Millisecond), float64(mc)/float64(me))

	id := fmt.Sprintf("bench-%d-status", os.Getpid())
	if _, err := katafsCreate(mnt, id); err != nil {
		return err
	}
	defer writeFile(filepath.Join(mnt, "sandboxes", id, "ctl"), "delete\n")
	status := filepath.Join(mnt, "sandboxes", id, "status")
	trivial := filepath.Join(mnt, "errors")
	var ts, tt []time.Duration
	for i := 0; i < reads; i++ {
		d, err := timedRead(status)
		if err != nil {
			return err
		}
		ts = append(ts, d)
		if d, err = timedRead(trivial); err != nil {
			return err
		}
		tt = append(tt, d)
	}
	fmt.Printf("cat status       median %v vs a trivial file of the same server %v: ratio %.2f (%d reads each)\n",
		median(ts), median(tt), float64(median(ts))/float64(median(tt)), reads)

	if err := pauseBench(mnt, id, 20); err != nil {
		return err
	}
	if err := ioBench(mnt, id, ioSize, ioRounds); err != nil {
		return err
	}
	if netns != "" {
		if err := hotplugBench(mnt, netns, tmp, 3); err != nil {
			return fmt.Errorf("hotplug: %w", err)
		}
	}
	rtt, err := checkRTT(filepath.Join(tmp, "rtt"), kernel, initrd, accel)
	if err != nil {
		return fmt.Errorf("check round trip: %w", err)
	}
	fmt.Printf("                 agent Check round trip (bare VM, median of 50) %v\n", rtt.Round(10*time.Microsecond))
	return nil
}

// netns is where the NIC benchmark's taps live.
var netns string

// Sizes of the I/O benchmark.
var (
	ioSize   = 20000000
	ioRounds = 3
)

// bareBoot starts QEMU with exactly the sandbox's command line and times
// it until the agent answers Check: the floor for create-to-ready. With
// onEvent it first waits for QMP's VSERPORT_CHANGE, as katafs does;
// without, it connects at once and retries.
func bareBoot(dir, kernel, initrd, accel string, onEvent bool) (time.Duration, error) {
	var d time.Duration
	err := bareVM(dir, kernel, initrd, accel, onEvent, func(_ *agent.Client, booted time.Duration) error {
		d = booted
		return nil
	})
	return d, err
}

// withBareVM boots a bare VM and hands fn its agent client.
func withBareVM(dir, kernel, initrd, accel string, fn func(*agent.Client) error) error {
	return bareVM(dir, kernel, initrd, accel, true, func(c *agent.Client, _ time.Duration) error { return fn(c) })
}

func bareVM(dir, kernel, initrd, accel string, onEvent bool, fn func(*agent.Client, time.Duration) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := qmp.Config{Name: "bare", Kernel: kernel, Initrd: initrd, MemoryMiB: 256, CPUs: 1, Accel: accel, RunDir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.Command("qemu-system-x86_64", cfg.Args()...)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if onEvent {
		mon, err := dialRetry(ctx, cfg.QMPSocket())
		if err != nil {
			return err
		}
		defer mon.Close()
		events, unsub := mon.Subscribe()
		defer unsub()
		if err := qmp.WaitPortOpen(ctx, events, qmp.AgentPortID); err != nil {
			return err
		}
	}
	c, err := agent.Connect(ctx, agent.UnixDialer{Path: cfg.AgentSocket()})
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c, time.Since(start))
}

// katafsCreate times `echo "create ID" > ctl` through the mount.
func katafsCreate(mnt, id string) (time.Duration, error) {
	start := time.Now()
	if err := writeFile(filepath.Join(mnt, "ctl"), "create "+id+"\n"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func timedRead(path string) (time.Duration, error) {
	start := time.Now()
	_, err := os.ReadFile(path)
	return time.Since(start), err
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// dialRetry connects to QMP once QEMU has made its socket.
func dialRetry(ctx context.Context, sock string) (*qmp.Monitor, error) {
	for {
		m, err := qmp.Dial(ctx, sock)
		if err == nil || ctx.Err() != nil {
			return m, err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// pauseBench times `echo pause > ctl` and `echo resume > ctl` (QMP stop
// and cont behind them); the sandbox must be running afterwards.
func pauseBench(mnt, id string, n int) error {
	ctl := filepath.Join(mnt, "sandboxes", id, "ctl")
	if err := writeFile(ctl, "start\n"); err != nil {
		return err
	}
	var p, r []time.Duration
	for i := 0; i < n; i++ {
		t := time.Now()
		if err := writeFile(ctl, "pause\n"); err != nil {
			return err
		}
		p = append(p, time.Since(t))
		t = time.Now()
		if err := writeFile(ctl, "resume\n"); err != nil {
			return err
		}
		r = append(r, time.Since(t))
	}
	fmt.Printf("pause / resume   median %v / %v (%d each)\n", median(p).Round(10*time.Microsecond), median(r).Round(10*time.Microsecond), n)
	return nil
}
